"""Runs that must end, and records that must stay true, in the corners found by review."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.commands import Decide
from engine.errors import Conflict
from engine.model import CheckpointOutcome, ResolvedBy, RunStatus
from engine.ports import HttpResponse
from engine.timeouts import Timeouts
from tests.unit.engine.conftest import World

GENERATOR = """\
id: gen
inputs: {type: object, properties: {tags: {type: array}}}
nodes:
  - id: norm
    type: set
    data: {tags: "{{ inputs.tags | map('upper') }}"}
"""

FORK = """\
id: fork
inputs: {type: object, properties: {}}
nodes:
  - {id: start, type: set, data: {ok: true}}
  - {id: gate, type: human, prompt: "ok?", assignee: "user:mia"}
  - {id: call, type: http, request: {method: POST, url: "https://example.com/x"}}
edges:
  - {from: start, to: gate}
  - {from: start, to: call}
"""

TIMED = """\
id: timed
inputs: {type: object, properties: {}}
nodes:
  - id: gate
    type: human
    kind: KIND
    prompt: "ok?"
    assignee: role:manager
    timeout: 4h
    EXTRA
"""


async def test_an_unexpected_value_fails_the_run_instead_of_wedging_it(
    make_world: Callable[..., World],
) -> None:
    w = make_world(GENERATOR)
    run = await w.engine.start("gen", {"tags": ["a"]}, requester="alice")
    await w.engine.drive(run.id)
    stored = await w.store.get_run(run.id)
    assert stored.status is RunStatus.failed
    assert "TypeError" in (stored.reason or "")
    assert await w.engine.recover() == 0


async def test_a_failed_branch_closes_the_other_branch_checkpoint(make_world: Callable[..., World]) -> None:
    w = make_world(FORK)
    w.http.responses = [HttpResponse(status=400, text="bad")]
    run = await w.engine.start("fork", {}, requester="alice")
    await w.engine.drive(run.id)
    assert (await w.store.get_run(run.id)).status is RunStatus.failed
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    assert cp.outcome is CheckpointOutcome.cancelled
    assert any(d.kind == "checkpoint_update" for d in await w.store.list_deliveries(checkpoint_id=cp.id))
    with pytest.raises(Conflict):
        await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    assert await w.store.list_decisions(run_id=run.id) == []


async def test_a_timeout_is_not_counted_as_a_quorum_approver(make_world: Callable[..., World]) -> None:
    w = make_world(
        TIMED.replace("KIND", "approval").replace("EXTRA", "quorum: 2\n    escalation: auto_approve")
    )
    run = await w.engine.start("timed", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    w.clock.advance(4 * 3600)
    assert await Timeouts(w.engine).fire_deadline(cp.id) == "auto_approve"
    stored = await w.store.get_checkpoint(cp.id)
    assert stored.approvals == ["mia"]
    assert stored.outcome is CheckpointOutcome.timed_out


async def test_escalation_without_its_own_timeout_still_reaches_its_final_action(
    make_world: Callable[..., World],
) -> None:
    extra = "escalation: {action: escalate, to: role:senior, final_action: auto_reject}"
    w = make_world(TIMED.replace("KIND", "approval").replace("EXTRA", extra))
    run = await w.engine.start("timed", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    t = Timeouts(w.engine)
    w.clock.advance(4 * 3600 + 1)
    assert await t.fire_deadline(cp.id) == "escalate"
    assert (await w.store.get_checkpoint(cp.id)).due_at is not None  # the node's 4h again
    w.clock.advance(4 * 3600 + 1)
    assert await t.fire_deadline(cp.id) == "auto_reject"
    assert (await w.store.get_run(run.id)).status is RunStatus.rejected


async def test_auto_approve_of_an_incomplete_proposal_rejects_by_policy(
    make_world: Callable[..., World],
) -> None:
    extra = (
        "escalation: auto_approve\n    "
        "response_schema: {type: object, properties: {amount: {type: number}}, required: [amount]}"
    )
    w = make_world(TIMED.replace("KIND", "review").replace("EXTRA", extra))
    run = await w.engine.start("timed", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    w.clock.advance(4 * 3600 + 1)
    await Timeouts(w.engine).fire_deadline(cp.id)
    [decision] = await w.store.list_decisions(run_id=run.id)
    assert (decision.action, decision.resolved_by, decision.rule) == (
        "reject",
        ResolvedBy.timeout,
        "auto_reject",
    )
    assert "auto_approve impossible" in (decision.comment or "")


@pytest.mark.parametrize("kind", ["approval", "review", "input"])
async def test_a_timeout_without_an_escalation_rejects_whatever_the_kind(
    make_world: Callable[..., World], kind: str
) -> None:
    # fail closed: a review used to auto-approve at its deadline unless the workflow said otherwise
    extra = "response_schema: {type: object, properties: {note: {type: string}}}" if kind == "input" else ""
    w = make_world(TIMED.replace("KIND", kind).replace("EXTRA", extra))
    run = await w.engine.start("timed", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    w.clock.advance(4 * 3600 + 1)
    assert await Timeouts(w.engine).fire_deadline(cp.id) == "auto_reject"
    [decision] = await w.store.list_decisions(run_id=run.id)
    assert (decision.action, decision.resolved_by) == ("reject", ResolvedBy.timeout)
    assert (await w.store.get_run(run.id)).status is RunStatus.rejected
