"""Asks (generated one-node workflows), webhook events queued with every change, agents refused
by the gate, and the outbox's per-kind retry schedule."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.ask import Ask, ask_inputs, ask_workflow
from engine.commands import Cancel, Decide
from engine.errors import InvalidInput, InvalidWorkflow, NotAllowed
from engine.events import EVENT_KIND, sign
from engine.loader import load_workflow_text
from engine.model import CheckpointOutcome, DeliveryStatus, RunStatus
from engine.outbox import Outbox, Route
from engine.timeouts import Timeouts
from tests.unit.engine.conftest import ROLES, RecordingSender, World

APPROVE = """\
id: approve
inputs: {type: object, properties: {}}
nodes:
  - id: review
    type: human
    prompt: "Ship it?"
    assignee: user:mia
    timeout: 1h
"""


async def _events(w: World, run_id: str) -> list[str]:
    rows = await w.store.list_deliveries(run_id=run_id)
    return [str(d.payload["type"]) for d in rows if d.kind == EVENT_KIND]


async def test_every_change_queues_its_event_in_its_own_commit(make_world: Callable[..., World]) -> None:
    w = make_world(APPROVE)
    w.engine.webhook_events = True
    run = await w.engine.start("approve", {}, requester="alice")
    await w.engine.drive(run.id)
    assert await _events(w, run.id) == ["checkpoint.opened"]
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia", channel="cli"))
    assert await _events(w, run.id) == ["checkpoint.opened", "checkpoint.decided", "run.finished"]

    timed = await w.engine.start("approve", {}, requester="alice")
    await w.engine.drive(timed.id)
    w.clock.advance(3601)
    [open_cp] = await w.store.list_checkpoints(run_id=timed.id, open_only=True)
    assert await Timeouts(w.engine).fire_deadline(open_cp.id) == "auto_reject"
    assert await _events(w, timed.id) == ["checkpoint.opened", "checkpoint.timed_out", "run.finished"]
    assert (await w.store.get_checkpoint(open_cp.id)).outcome is CheckpointOutcome.timed_out

    cancelled = await w.engine.start("approve", {}, requester="alice")
    await w.engine.drive(cancelled.id)
    await w.engine.cancel(Cancel(run_id=cancelled.id, actor="alice"))
    assert await _events(w, cancelled.id) == ["checkpoint.opened", "run.finished", "checkpoint.cancelled"]


async def test_no_events_unless_the_engine_queues_them(make_world: Callable[..., World]) -> None:
    w = make_world(APPROVE)
    run = await w.engine.start("approve", {}, requester="alice")
    await w.engine.drive(run.id)
    assert await _events(w, run.id) == []


async def test_an_agent_never_decides(make_world: Callable[..., World]) -> None:
    w = make_world(APPROVE)
    run = await w.engine.start("approve", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    with pytest.raises(NotAllowed) as refused:
        await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="api:key_1", channel="api"))
    assert refused.value.rule == "agent_cannot_decide"
    [event] = [e for e in await w.store.audit_events() if e.kind == "decision.refused"]
    assert (event.actor, event.payload["rule"]) == ("api:key_1", "agent_cannot_decide")
    assert await w.engine.can_decide(cp, "mia")


async def test_an_asks_run_ends_with_its_checkpoint_and_tells_no_agent(
    make_world: Callable[..., World],
) -> None:
    w = make_world()
    ask = Ask(
        prompt="Deploy v2?", show={"version": "2.0"}, assignee="user:mia", options=["approve", "reject"]
    )
    workflow = ask_workflow(ask, ROLES)
    assert ask_workflow(ask, ROLES).content_hash == workflow.content_hash, (
        "the same structure, the same version"
    )
    run = await w.engine.start_pinned(workflow, ask_inputs(ask), requester="api:key_1", run_id="run_fixed")
    assert run.id == "run_fixed"
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    assert (cp.prompt, cp.title, cp.context, cp.options) == (
        "Deploy v2?",
        "Deploy v2?",
        {"version": "2.0"},
        ["approve", "reject"],
    )
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="reject", actor="mia", channel="slack"))
    ended = await w.store.get_run(run.id)
    assert ended.status is RunStatus.rejected
    kinds = [d.kind for d in await w.store.list_deliveries(run_id=run.id)]
    assert "requester_notice" not in kinds, "an agent gets webhooks, not Slack messages"


def test_structural_fields_refuse_templates_and_bad_values() -> None:
    with pytest.raises(InvalidInput) as bad:
        ask_workflow(Ask(prompt="x", assignee="user:mia", confirm="{{ inputs.prompt }}"), ROLES)
    assert list(bad.value.errors) == ["confirm"]
    with pytest.raises(InvalidInput) as bad:
        ask_workflow(Ask(prompt="x", assignee="role:ghosts", reminders=["5m"]), ROLES)
    assert set(bad.value.errors) == {"assignee", "reminders"}


def test_a_context_string_must_be_one_expression() -> None:
    text = APPROVE.replace(
        '    prompt: "Ship it?"', '    prompt: "Ship it?"\n    context: "see {{ inputs }}"'
    )
    with pytest.raises(InvalidWorkflow, match="context"):
        load_workflow_text(text, roles=ROLES)


async def test_a_route_retries_on_its_own_schedule_then_fails(make_world: Callable[..., World]) -> None:
    w = make_world(APPROVE)
    w.engine.webhook_events = True
    run = await w.engine.start("approve", {}, requester="alice")
    await w.engine.drive(run.id)
    slack, hooks = RecordingSender(), RecordingSender(fail_first=99)
    outbox = Outbox(w.store, slack, w.clock, routes={EVENT_KIND: Route(hooks, (10.0, 100.0))})
    for _ in range(4):
        await outbox.dispatch_due()
        w.clock.advance(100)
    rows = await w.store.list_deliveries(run_id=run.id)
    [event] = [d for d in rows if d.kind == EVENT_KIND]
    assert (event.status, event.attempts) == (DeliveryStatus.failed, 3)
    assert [d.kind for d in slack.sent] == ["checkpoint"], "other kinds still go to the default sender"


def test_signatures_follow_standard_webhooks() -> None:
    from standardwebhooks.webhooks import Webhook

    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    header = sign([secret], "msg_1", 1_700_000_000, b'{"a":1}')
    webhook = Webhook(secret)
    signed = webhook.sign("msg_1", __import__("datetime").datetime.fromtimestamp(1_700_000_000), '{"a":1}')
    assert header == signed
