"""Deadlines, escalation chains and reminders, with hour-long timeouts in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from engine.commands import Decide
from engine.errors import Conflict, NotAllowed
from engine.model import CheckpointOutcome, ResolvedBy, RunStatus
from engine.testing import StaticDirectory
from engine.timeouts import Timeouts
from tests.unit.engine.conftest import World

BASE = """\
id: t
inputs: {type: object, properties: {}}
nodes:
  - id: gate
    type: human
    prompt: "ok?"
    assignee: role:manager
    timeout: 4h
    reminders: [1h, 3h]
    ESCALATION
  - id: done
    type: set
    data: {how: "{{ nodes.gate.data.resolved_by }}", rule: "{{ nodes.gate.data.rule }}"}
  - id: late
    type: set
    data: {late: true}
edges:
  - {from: gate, to: done, when: "response.action == 'approve'"}
  - {from: gate, to: late, when: "response.action == 'reject' && response.resolved_by == 'timeout'"}
"""


def _wf(escalation: str) -> str:
    return BASE.replace("ESCALATION", escalation)


async def _open(w: World) -> tuple[str, str]:
    run = await w.engine.start("t", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id, open_only=True)
    return run.id, cp.id


async def test_timeout_rejects_by_policy_and_edges_can_tell(make_world: Callable[..., World]) -> None:
    w = make_world(_wf(""))
    t = Timeouts(w.engine)
    run_id, cp_id = await _open(w)
    assert await t.fire_deadline(cp_id) == "not due"
    w.clock.advance(4 * 3600 + 1)
    assert await t.fire_deadline(cp_id) == "auto_reject"
    [decision] = await w.store.list_decisions(run_id=run_id)
    assert decision.resolved_by is ResolvedBy.timeout
    assert decision.rule == "auto_reject"
    assert decision.actor == "policy:auto_reject"
    assert (await w.store.get_checkpoint(cp_id)).outcome is CheckpointOutcome.timed_out
    run = await w.store.get_run(run_id)
    assert run.status is RunStatus.succeeded  # the 'late' edge handled the timeout
    assert [s.node_id for s in await w.store.list_steps(run_id)] == ["gate", "late"]
    assert await t.fire_deadline(cp_id) == "closed"


async def test_escalation_chain(make_world: Callable[..., World]) -> None:
    w = make_world(
        _wf("escalation: {action: escalate, to: role:senior, timeout: 2h, final_action: auto_approve}")
    )
    t = Timeouts(w.engine)
    run_id, cp_id = await _open(w)
    w.clock.advance(4 * 3600)
    assert await t.fire_deadline(cp_id, level=0) == "escalate"
    cp = await w.store.get_checkpoint(cp_id)
    assert cp.assignees == ["role:senior"]
    assert cp.escalation_level == 1
    assert cp.due_at == w.clock.now() + timedelta(hours=2)
    dms = [d for d in await w.store.list_deliveries(checkpoint_id=cp_id) if d.payload.get("escalation")]
    assert [(d.target, d.payload["from"], d.payload["waited_s"]) for d in dms] == [
        ("role:senior", ["role:manager"], 4 * 3600)
    ]
    assert any(d.kind == "checkpoint_update" for d in await w.store.list_deliveries(checkpoint_id=cp_id))
    with pytest.raises(NotAllowed):
        await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="mia"))
    assert await t.fire_deadline(cp_id, level=0) == "stale"
    w.clock.advance(2 * 3600)
    assert await t.fire_deadline(cp_id, level=1) == "auto_approve"
    done = next(s for s in await w.store.list_steps(run_id) if s.node_id == "done")
    assert done.output is not None
    assert done.output.data == {"how": "timeout", "rule": "auto_approve"}
    kinds = [e.kind for e in await w.store.audit_events(run_id=run_id)]
    assert "checkpoint.escalated" in kinds


async def test_escalated_assignee_can_decide(make_world: Callable[..., World]) -> None:
    w = make_world(
        _wf("escalation: {action: escalate, to: role:senior, timeout: 2h, final_action: auto_reject}")
    )
    t = Timeouts(w.engine)
    run_id, cp_id = await _open(w)
    w.clock.advance(4 * 3600)
    await t.fire_deadline(cp_id)
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="sam"))
    assert (await w.store.get_run(run_id)).status is RunStatus.succeeded
    w.clock.advance(3 * 3600)
    assert await t.fire_deadline(cp_id) == "closed"
    assert len(await w.store.list_decisions(run_id=run_id)) == 1


async def test_retry_then_final(make_world: Callable[..., World]) -> None:
    w = make_world(_wf("escalation: {action: retry, max_retries: 2, final_action: auto_reject}"))
    t = Timeouts(w.engine)
    _, cp_id = await _open(w)
    for expected in ["retry", "retry", "auto_reject"]:
        w.clock.advance(4 * 3600)
        assert await t.fire_deadline(cp_id) == expected
    retries = [
        d
        for d in await w.store.list_deliveries(checkpoint_id=cp_id)
        if d.payload.get("escalation") == "retry"
    ]
    assert [d.payload["attempt"] for d in retries] == [1, 2]


async def test_queue_goes_to_the_shared_channel(make_world: Callable[..., World]) -> None:
    w = make_world(_wf("escalation: queue"))
    w.engine.deps.directory = StaticDirectory(channels={"CQUEUE": ["anyone-in-queue"]})
    t = Timeouts(w.engine, queue_channel="CQUEUE")
    run_id, cp_id = await _open(w)
    w.clock.advance(4 * 3600)
    assert await t.fire_deadline(cp_id) == "queue"
    assert (await w.store.get_checkpoint(cp_id)).assignees == ["channel:CQUEUE"]
    # only members of the queue channel decide: a passer-by is refused
    with pytest.raises(NotAllowed, match="only the assignees"):
        await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="passer-by"))
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="anyone-in-queue"))
    assert (await w.store.get_run(run_id)).status is RunStatus.succeeded


async def test_reminders_are_sent_once(make_world: Callable[..., World]) -> None:
    w = make_world(_wf(""))
    t = Timeouts(w.engine)
    _, cp_id = await _open(w)
    assert await t.send_reminder(cp_id, 0) is True
    assert await t.send_reminder(cp_id, 0) is False
    reminders = [d for d in await w.store.list_deliveries(checkpoint_id=cp_id) if d.kind == "reminder"]
    assert [d.target for d in reminders] == ["role:manager"]
    assert reminders[0].payload["left_s"] == 4 * 3600


async def test_deadline_racing_a_click_resolves_once(make_world: Callable[..., World]) -> None:
    w = make_world(_wf(""))
    t = Timeouts(w.engine)
    run_id, cp_id = await _open(w)
    w.clock.advance(4 * 3600)

    async def click() -> str:
        try:
            await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="mia"))
        except Conflict:
            return "conflict"
        return "approved"

    results = await asyncio.gather(t.fire_deadline(cp_id), click(), t.fire_deadline(cp_id), click())
    assert len(await w.store.list_decisions(run_id=run_id)) == 1
    winners = [r for r in results if r in {"approved", "auto_reject"}]
    assert len(winners) == 1, results
    steps = [s.node_id for s in await w.store.list_steps(run_id)]
    assert steps.count("done") + steps.count("late") == 1
