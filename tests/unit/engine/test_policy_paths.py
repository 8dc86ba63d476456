"""Quorum, conditional checkpoints, input checkpoints, the audit chain and the outbox."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.audit import verify_chain
from engine.commands import Decide
from engine.errors import NotAllowed
from engine.model import Checkpoint, DeliveryStatus, Run, RunStatus
from engine.outbox import Outbox
from tests.unit.engine.conftest import RecordingSender, World

QUORUM = """\
id: wire
inputs: {type: object, properties: {amount: {type: number}}, required: [amount]}
nodes:
  - id: approve
    type: human
    when: "inputs.amount > 1000"
    prompt: "Wire {{ inputs.amount }}?"
    assignee: role:manager
    quorum: 2
    confirm: WIRE
  - id: done
    type: set
    data: {by: "{{ nodes.approve.data.actor }}", resolved_by: "{{ nodes.approve.data.resolved_by }}"}
edges:
  - {from: approve, to: done, when: "response.action == 'approve'"}
"""

ASK = """\
id: ask
inputs: {type: object, properties: {order: {type: string}}}
nodes:
  - id: ask
    type: human
    kind: input
    prompt: "Address for {{ inputs.order }}?"
    response_schema:
      type: object
      properties: {address: {type: string, minLength: 5}, express: {type: boolean, default: false}}
      required: [address]
  - id: ship
    type: set
    data: {to: "{{ nodes.ask.data.address }}", express: "{{ nodes.ask.data.express }}"}
edges:
  - {from: ask, to: ship}
"""


async def test_quorum_needs_two_distinct_people_and_the_word(make_world: Callable[..., World]) -> None:
    w = make_world(QUORUM)
    run = await w.engine.start("wire", {"amount": 5000}, requester="alice")
    await w.engine.drive(run.id)
    cp = (await w.store.list_checkpoints(run_id=run.id, open_only=True))[0]
    with pytest.raises(NotAllowed, match="type WIRE"):
        await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    assert (
        await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia", confirm="WIRE"))
        is None
    )
    with pytest.raises(NotAllowed, match="already approved"):
        await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia", confirm="WIRE"))
    assert (await w.store.get_run(run.id)).status is RunStatus.waiting
    decision = await w.engine.decide(
        Decide(checkpoint_id=cp.id, action="approve", actor="manny", confirm="WIRE")
    )
    assert decision is not None
    assert (await w.store.get_run(run.id)).status is RunStatus.succeeded
    assert (await w.store.get_checkpoint(cp.id)).approvals == ["mia", "manny"]


async def test_condition_false_passes_by_policy(make_world: Callable[..., World]) -> None:
    w = make_world(QUORUM)
    run = await w.engine.start("wire", {"amount": 10}, requester="alice")
    await w.engine.drive(run.id)
    assert (await w.store.get_run(run.id)).status is RunStatus.succeeded
    done = next(s for s in await w.store.list_steps(run.id) if s.node_id == "done")
    assert done.output is not None
    assert done.output.data == {"by": "policy:when", "resolved_by": "policy"}
    passed = [e for e in await w.store.audit_events(run_id=run.id) if e.kind == "checkpoint.passed"]
    assert passed[0].payload["expression"] == "inputs.amount > 1000"
    assert passed[0].payload["values"] == {"inputs": {"amount": 10}}


async def test_input_checkpoint_asks_requester(make_world: Callable[..., World]) -> None:
    w = make_world(ASK)
    run = await w.engine.start("ask", {"order": "o-1"}, requester="alice")
    await w.engine.drive(run.id)
    cp = (await w.store.list_checkpoints(run_id=run.id, open_only=True))[0]
    assert cp.assignees == ["user:alice"]
    assert cp.proposed == {"express": False}
    await w.engine.decide(
        Decide(checkpoint_id=cp.id, action="answer", actor="alice", data={"address": "1 Main St"})
    )
    ship = next(s for s in await w.store.list_steps(run.id) if s.node_id == "ship")
    assert ship.output is not None
    assert ship.output.data == {"to": "1 Main St", "express": False}


async def test_audit_chain_covers_the_whole_run(make_world: Callable[..., World]) -> None:
    w = make_world(ASK)
    run = await w.engine.start("ask", {"order": "o-1"}, requester="alice")
    await w.engine.drive(run.id)
    cp = (await w.store.list_checkpoints(run_id=run.id, open_only=True))[0]
    await w.engine.decide(
        Decide(checkpoint_id=cp.id, action="answer", actor="alice", data={"address": "1 Main St"})
    )
    events = await w.store.audit_events()
    kinds = [e.kind for e in events]
    assert kinds == [
        "run.started",
        "checkpoint.opened",
        "decision.recorded",
        "step.succeeded",
        "run.succeeded",
    ]
    decision = events[2]
    assert decision.payload["shown_hash"] == cp.shown_hash
    assert len(decision.payload["output_hash"]) == 64
    assert verify_chain(events, await w.store.audit_head()).ok


async def test_outbox_retries_then_sends(make_world: Callable[..., World]) -> None:
    w = make_world(ASK)
    run = await w.engine.start("ask", {"order": "o-1"}, requester="alice")
    await w.engine.drive(run.id)
    sender = RecordingSender(fail_first=2, retry_after=5)
    outbox = Outbox(w.store, sender, w.clock)
    assert await outbox.dispatch_due() == 1
    assert sender.sent == []
    assert await outbox.dispatch_due() == 0  # not due before Retry-After
    w.clock.advance(5)
    await outbox.dispatch_due()
    w.clock.advance(5)
    await outbox.dispatch_due()
    [delivery] = await w.store.list_deliveries(run_id=run.id)
    assert delivery.status is DeliveryStatus.sent
    assert delivery.attempts == 3
    assert [d.kind for d in sender.sent] == ["checkpoint"]


async def test_outbox_gives_up_with_audit(make_world: Callable[..., World]) -> None:
    w = make_world(ASK)
    run = await w.engine.start("ask", {"order": "o-1"}, requester="alice")
    await w.engine.drive(run.id)
    outbox = Outbox(w.store, RecordingSender(fail_first=99), w.clock, max_attempts=3)
    for _ in range(5):
        await outbox.dispatch_due()
        w.clock.advance(600)
    [delivery] = await w.store.list_deliveries(run_id=run.id)
    assert delivery.status is DeliveryStatus.failed
    assert any(e.kind == "delivery.failed" for e in await w.store.audit_events())


POOL = """\
id: pool
inputs: {type: object, properties: {}}
nodes:
  - id: review
    type: human
    prompt: "Look?"
    assignee: {strategy: STRATEGY, pool: [user:ann, user:ben, user:cid]}
"""


async def test_round_robin_rotates_through_the_pool(make_world: Callable[..., World]) -> None:
    w = make_world(POOL.replace("STRATEGY", "round_robin"))
    picked = []
    for _ in range(4):
        run = await w.engine.start("pool", {}, requester="alice")
        await w.engine.drive(run.id)
        [cp] = await w.store.list_checkpoints(run_id=run.id)
        picked.append(cp.assignees)
        w.clock.advance(1)
    assert picked == [["user:ann"], ["user:ben"], ["user:cid"], ["user:ann"]]


async def test_least_busy_counts_open_checkpoints(make_world: Callable[..., World]) -> None:
    w = make_world(POOL.replace("STRATEGY", "least_busy"))
    cps = []
    for _ in range(3):
        run = await w.engine.start("pool", {}, requester="alice")
        await w.engine.drive(run.id)
        cps += await w.store.list_checkpoints(run_id=run.id)
    assert [cp.assignees for cp in cps] == [["user:ann"], ["user:ben"], ["user:cid"]]
    await w.engine.decide(Decide(checkpoint_id=cps[1].id, action="approve", actor="ben"))
    run = await w.engine.start("pool", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    assert cp.assignees == ["user:ben"]  # ben has nothing open any more


DELEGATED = """\
id: deleg
inputs: {type: object, properties: {}}
nodes:
  - id: direct
    type: human
    prompt: "Direct?"
    assignee: user:mia
  - id: by_role
    type: human
    prompt: "Role?"
    assignee: role:manager
edges:
  - {from: direct, to: by_role}
"""


async def test_delegation_sends_new_checkpoints_to_the_delegate(make_world: Callable[..., World]) -> None:
    from datetime import timedelta

    from engine.delegation import delegate
    from engine.errors import InvalidInput

    w = make_world(DELEGATED)
    day = w.clock.now() + timedelta(days=1)
    with pytest.raises(InvalidInput):
        await delegate(w.engine, delegator="mia", to="mia", until=day, actor="mia", channel="cli")
    await delegate(w.engine, delegator="mia", to="dave", until=day, actor="mia", channel="cli")
    run = await w.engine.start("deleg", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id, open_only=True)
    # who may decide is unchanged; the card of the named delegator goes to the delegate
    assert cp.assignees == ["user:mia"]
    assert cp.delegations == {"dave": "mia"}
    cards = [d.target for d in await w.store.list_deliveries(checkpoint_id=cp.id) if d.kind == "checkpoint"]
    assert cards == ["user:dave"]
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="dave"))
    recorded = [e for e in await w.store.audit_events(run_id=run.id) if e.kind == "decision.recorded"]
    assert (recorded[0].actor, recorded[0].payload["principal"], recorded[0].payload["via"]) == (
        "dave",
        "mia",
        "delegation",
    )
    [cp2] = await w.store.list_checkpoints(run_id=run.id, open_only=True)
    assert cp2.assignees == ["role:manager"]  # mia is reached through the role
    cards = [d.target for d in await w.store.list_deliveries(checkpoint_id=cp2.id) if d.kind == "checkpoint"]
    assert cards == ["role:manager", "user:dave"]
    opened = [e for e in await w.store.audit_events(run_id=run.id) if e.kind == "checkpoint.opened"]
    assert opened[0].payload["delegations"] == {"dave": "mia"}
    w.clock.advance(2 * 86400)  # the delegation ended: dave decides nothing any more
    with pytest.raises(NotAllowed, match="only the assignees"):
        await w.engine.decide(Decide(checkpoint_id=cp2.id, action="approve", actor="dave"))
    run2 = await w.engine.start("deleg", {}, requester="alice")
    await w.engine.drive(run2.id)
    [cp3] = await w.store.list_checkpoints(run_id=run2.id, open_only=True)
    assert (cp3.assignees, cp3.delegations) == (["user:mia"], {})


async def _editable_quorum(make_world: Callable[..., World]) -> tuple[World, Run, Checkpoint]:
    """A wire of 5000 waiting for two of mia, manny and sam, whose note they may edit."""
    extra = (
        "    response_schema: {type: object, properties: {note: {type: string}}}\n"
        "    proposed: {note: first}\n"
        "    options: [approve, reject, edit]\n"
    )
    text = QUORUM.replace("    confirm: WIRE\n", extra).replace(
        "assignee: role:manager", "assignee: [user:mia, user:manny, user:sam]"
    )
    w = make_world(text)
    run = await w.engine.start("wire", {"amount": 5000}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id, open_only=True)
    return w, run, cp


async def test_quorum_editor_cannot_approve_their_own_edit(make_world: Callable[..., World]) -> None:
    w, run, cp = await _editable_quorum(make_world)
    assert await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia")) is None
    assert (
        await w.engine.decide(
            Decide(checkpoint_id=cp.id, action="edit", actor="manny", data={"note": "second"})
        )
        is None
    )
    edited = await w.store.get_checkpoint(cp.id)
    assert (edited.proposed, edited.editors, edited.approvals) == ({"note": "second"}, ["manny"], [])
    assert edited.shown_hash != cp.shown_hash
    with pytest.raises(NotAllowed, match="cannot approve your own edit"):
        await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="manny"))
    assert await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia")) is None
    decision = await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="sam"))
    assert decision is not None
    assert decision.data == {"note": "second"}
    assert (await w.store.get_run(run.id)).status is RunStatus.succeeded
    kinds = [e.kind for e in await w.store.audit_events(run_id=run.id)]
    assert kinds.count("checkpoint.edited") == 1


async def test_an_approval_of_a_copy_shown_before_a_quorum_edit_is_refused(
    make_world: Callable[..., World],
) -> None:
    from engine.errors import Conflict

    w, _run, cp = await _editable_quorum(make_world)
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="edit", actor="manny", data={"note": "second"}))
    with pytest.raises(Conflict, match="edited \\(by manny\\) after your copy"):
        await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia", expected_version=0))
    edited = await w.store.get_checkpoint(cp.id)
    assert (
        await w.engine.decide(
            Decide(checkpoint_id=cp.id, action="approve", actor="mia", expected_version=edited.version)
        )
        is None
    )
