"""The decision gate: delegation, pools, channels, teams, self-approval, versions, timers, refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from engine.audit import verify_decisions
from engine.commands import Decide
from engine.delegation import delegate, end_delegations
from engine.errors import Conflict, InvalidInput, NotAllowed, StaleVersion
from engine.model import CheckpointStatus, RunStatus
from engine.testing import StaticDirectory
from engine.timeouts import Timeouts
from tests.unit.engine.conftest import World

PAYMENT = """\
id: pay
inputs: {type: object, properties: {amount: {type: number}}}
nodes:
  - id: release
    type: human
    prompt: "Release {{ inputs.amount }}?"
    assignee: role:finance
    quorum: 2
    proposed: {amount: "{{ inputs.amount }}"}
    response_schema: {type: object, properties: {amount: {type: number}}}
  - {id: paid, type: set, data: {ok: true}}
edges: [{from: release, to: paid, when: "response.action == 'approve'"}]
"""

POOL = """\
id: ticket
nodes:
  - id: triage
    type: human
    prompt: "Take it?"
    assignee: {strategy: round_robin, pool: [user:ann, user:ben, user:cat]}
"""

ASK_REQUESTER = """\
id: office
nodes:
  - id: where
    type: human
    kind: input
    prompt: "Which office are you in?"
    assignee: user:U_REQ
    response_schema: {type: object, properties: {office: {type: string}}, required: [office]}
"""

CHANNEL = """\
id: chan
nodes:
  - {id: ok, type: human, prompt: "ok?", assignee: "channel:C1"}
"""

TIMED = """\
id: timed
nodes:
  - {id: ok, type: human, prompt: "ok?", assignee: "user:fiona", timeout: 1h, ESCALATION}
"""


@pytest.fixture
def world(make_world: Callable[..., World]) -> Callable[..., World]:
    return make_world


async def _open(
    w: World, workflow: str, inputs: dict[str, Any] | None = None, requester: str = "alice"
) -> str:
    run = await w.engine.start(workflow, inputs or {}, requester=requester)
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id, open_only=True)
    return cp.id


async def _snapshot(w: World, cp_id: str) -> tuple[Any, ...]:
    cp = await w.store.get_checkpoint(cp_id)
    return (
        cp,
        await w.store.get_run(cp.run_id),
        await w.store.list_steps(cp.run_id),
        await w.store.list_decisions(run_id=cp.run_id),
        await w.store.list_deliveries(run_id=cp.run_id),
    )


async def _refused(w: World, command: Decide, error: type[Exception], match: str) -> dict[str, Any]:
    """The attempt is refused, nothing changes, and one ``decision.refused`` event says why."""
    before = await _snapshot(w, command.checkpoint_id)
    events = len(await w.store.audit_events())
    with pytest.raises(error, match=match):
        await w.engine.decide(command)
    assert await _snapshot(w, command.checkpoint_id) == before
    new = (await w.store.audit_events())[events:]
    assert [e.kind for e in new] == ["decision.refused"]
    assert (new[0].actor, new[0].payload["action"]) == (command.actor, command.action)
    return new[0].payload


# ---------------------------------------------------------------- delegation


async def test_a_delegate_and_their_delegator_count_once_toward_a_quorum(world: Callable[..., World]) -> None:
    w = world(PAYMENT)
    until = w.clock.now() + timedelta(days=3)
    await delegate(w.engine, delegator="fiona", to="dave", until=until, actor="fiona", channel="cli")
    cp_id = await _open(w, "pay", {"amount": 900})
    assert await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="fiona")) is None
    refusal = await _refused(
        w, Decide(checkpoint_id=cp_id, action="approve", actor="dave"), NotAllowed, "already approved"
    )
    assert refusal["rule"] == "already_voted"
    assert (await w.store.get_checkpoint(cp_id)).status is CheckpointStatus.open
    decision = await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="felix"))
    assert decision is not None
    assert (await w.store.get_checkpoint(cp_id)).approvals == ["fiona", "felix"]


async def test_a_delegate_voting_first_blocks_the_delegator(world: Callable[..., World]) -> None:
    w = world(PAYMENT)
    until = w.clock.now() + timedelta(days=3)
    await delegate(w.engine, delegator="fiona", to="dave", until=until, actor="fiona", channel="cli")
    cp_id = await _open(w, "pay", {"amount": 900})
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="dave"))
    assert (await w.store.get_checkpoint(cp_id)).approvals == ["fiona"]
    await _refused(w, Decide(checkpoint_id=cp_id, action="approve", actor="fiona"), NotAllowed, "already")


async def test_delegation_goes_only_to_someone_who_may_hold_the_role(world: Callable[..., World]) -> None:
    w = world(PAYMENT)
    until = w.clock.now() + timedelta(days=3)
    with pytest.raises(InvalidInput) as info:
        await delegate(w.engine, delegator="fiona", to="mallory", until=until, actor="fiona", channel="cli")
    assert "may not hold the role 'finance'" in info.value.errors["to"]
    with pytest.raises(InvalidInput) as info:
        await delegate(w.engine, delegator="nobody", to="dave", until=until, actor="nobody", channel="cli")
    assert "holds no role" in info.value.errors["to"]
    with pytest.raises(NotAllowed, match="only fiona or an admin"):
        await delegate(w.engine, delegator="fiona", to="dave", until=until, actor="mallory", channel="cli")
    # an admin may record what the role rule would refuse; the audit says an admin did
    made = await delegate(w.engine, delegator="nobody", to="dave", until=until, actor="olga", channel="cli")
    assert made.created_by == "olga"
    [event] = [e for e in await w.store.audit_events() if e.kind == "delegation.created"]
    assert event.payload["by_admin"] is True


async def test_delegation_has_a_maximum_length(world: Callable[..., World]) -> None:
    w = world(PAYMENT)
    too_long = w.clock.now() + timedelta(days=31)
    with pytest.raises(InvalidInput) as info:
        await delegate(w.engine, delegator="fiona", to="dave", until=too_long, actor="fiona", channel="cli")
    assert "at most 30 days" in info.value.errors["until"]
    w.engine.delegation_max = timedelta(days=60)
    await delegate(w.engine, delegator="fiona", to="dave", until=too_long, actor="fiona", channel="cli")


async def test_ending_a_delegation_takes_effect_at_once(world: Callable[..., World]) -> None:
    w = world(PAYMENT)
    until = w.clock.now() + timedelta(days=3)
    await delegate(w.engine, delegator="fiona", to="dave", until=until, actor="fiona", channel="cli")
    cp_id = await _open(w, "pay", {"amount": 900})
    with pytest.raises(NotAllowed, match="only fiona or an admin"):
        await end_delegations(w.engine, delegator="fiona", actor="dave", channel="cli")
    [ended] = await end_delegations(w.engine, delegator="fiona", actor="fiona", channel="cli")
    assert ended.until == w.clock.now()
    assert await w.store.list_delegations(active_at=w.clock.now()) == []
    refusal = await _refused(
        w, Decide(checkpoint_id=cp_id, action="approve", actor="dave"), NotAllowed, "only the assignees"
    )
    assert refusal["rule"] == "not_assignee"
    assert "delegation.ended" in [e.kind for e in await w.store.audit_events()]


async def test_round_robin_skips_a_delegating_member(world: Callable[..., World]) -> None:
    w = world(POOL)
    until = w.clock.now() + timedelta(days=3)
    await delegate(w.engine, delegator="ben", to="dave", until=until, actor="ben", channel="cli")
    picked = []
    for _ in range(6):
        cp = await w.store.get_checkpoint(await _open(w, "ticket"))
        picked.append(cp.assignees[0])
        cards = [
            d.target for d in await w.store.list_deliveries(checkpoint_id=cp.id) if d.kind == "checkpoint"
        ]
        assert cards == cp.assignees
    assert picked == ["user:ann", "user:cat"] * 3


# ---------------------------------------------------------------- who may decide


async def test_the_requester_answers_a_question_asked_of_them(world: Callable[..., World]) -> None:
    w = world(ASK_REQUESTER)
    cp_id = await _open(w, "office", requester="U_REQ")
    decision = await w.engine.decide(
        Decide(checkpoint_id=cp_id, action="answer", actor="U_REQ", data={"office": "Berlin"})
    )
    assert decision is not None
    assert decision.data == {"office": "Berlin"}


async def test_the_requester_may_not_approve_their_own_request(world: Callable[..., World]) -> None:
    w = world(PAYMENT)
    cp_id = await _open(w, "pay", {"amount": 900}, requester="fiona")
    refusal = await _refused(
        w, Decide(checkpoint_id=cp_id, action="approve", actor="fiona"), NotAllowed, "you started this run"
    )
    assert refusal["rule"] == "self_approval"


async def test_channel_deciders_must_be_members(world: Callable[..., World]) -> None:
    w = world(CHANNEL)
    cp_id = await _open(w, "chan")
    refusal = await _refused(
        w, Decide(checkpoint_id=cp_id, action="approve", actor="walker"), NotAllowed, "through Slack"
    )
    assert refusal["rule"] == "not_assignee"
    w.engine.deps.directory = StaticDirectory(channels={"C1": ["member"]})
    await _refused(w, Decide(checkpoint_id=cp_id, action="approve", actor="walker"), NotAllowed, "assignees")
    assert await w.engine.can_decide(await w.store.get_checkpoint(cp_id), "member")
    assert await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="member")) is not None


async def test_a_payload_from_another_team_is_refused(world: Callable[..., World]) -> None:
    w = world(CHANNEL)
    w.engine.deps.directory = StaticDirectory(channels={"C1": ["member"]})
    w.engine.gate.team = "T_HOME"
    cp_id = await _open(w, "chan")
    for team in ("T_OTHER", None):
        command = Decide(checkpoint_id=cp_id, action="approve", actor="member", channel="slack", team=team)
        refusal = await _refused(w, command, NotAllowed, "another Slack workspace")
        assert (refusal["rule"], refusal["team"]) == ("wrong_team", team)
    ok = Decide(checkpoint_id=cp_id, action="approve", actor="member", channel="slack", team="T_HOME")
    assert await w.engine.decide(ok) is not None


# ---------------------------------------------------------------- versions


async def test_votes_do_not_make_a_copy_stale_but_an_edit_does(world: Callable[..., World]) -> None:
    w = world(PAYMENT)
    cp_id = await _open(w, "pay", {"amount": 100})
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="fiona", expected_version=0))
    # felix's copy was shown at version 0, before fiona's vote: the proposal did not change
    assert (
        await w.engine.decide(
            Decide(checkpoint_id=cp_id, action="approve", actor="felix", expected_version=0)
        )
        is not None
    )


async def test_a_copy_older_than_the_proposal_or_a_future_version_is_refused(
    world: Callable[..., World],
) -> None:
    w = world(PAYMENT.replace("proposed:", "options: [approve, reject, edit]\n    proposed:"))
    cp_id = await _open(w, "pay", {"amount": 100})
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="edit", actor="fiona", data={"amount": 500}))
    refusal = await _refused(
        w,
        Decide(checkpoint_id=cp_id, action="approve", actor="felix", expected_version=0),
        StaleVersion,
        "edited \\(by fiona\\)",
    )
    assert (refusal["rule"], refusal["expected_version"], refusal["version"]) == ("stale_version", 0, 1)
    await _refused(
        w, Decide(checkpoint_id=cp_id, action="approve", actor="felix", expected_version=9), Conflict, "never"
    )
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="felix"))
    recorded = [e for e in await w.store.audit_events() if e.kind == "checkpoint.vote"]
    assert (recorded[-1].payload["version"], recorded[-1].payload["version_checked"]) == (1, False)


# ---------------------------------------------------------------- timers


async def test_a_deadline_decision_before_the_deadline_is_refused(world: Callable[..., World]) -> None:
    w = world(TIMED.replace(", ESCALATION", ""))
    cp_id = await _open(w, "timed")
    forged = Decide(
        checkpoint_id=cp_id,
        action="reject",
        actor="policy:auto_reject",
        resolved_by="timeout",
        rule="auto_reject",
    )
    refusal = await _refused(w, forged, NotAllowed, "has not passed")
    assert refusal["rule"] == "not_due"


async def test_a_deadline_approves_only_where_the_workflow_says_so(world: Callable[..., World]) -> None:
    w = world(TIMED.replace(", ESCALATION", ""))
    cp_id = await _open(w, "timed")
    w.clock.advance(3601)
    forged = Decide(
        checkpoint_id=cp_id, action="approve", actor="policy:x", resolved_by="timeout", rule="auto_approve"
    )
    refusal = await _refused(w, forged, NotAllowed, "does not approve")
    assert refusal["rule"] == "no_auto_approve"
    assert await Timeouts(w.engine).fire_deadline(cp_id) == "auto_reject"
    w2 = world(TIMED.replace("ESCALATION", "escalation: auto_approve"))
    cp2 = await _open(w2, "timed")
    w2.clock.advance(3601)
    assert await Timeouts(w2.engine).fire_deadline(cp2) == "auto_approve"
    assert (await w2.store.get_run((await w2.store.get_checkpoint(cp2)).run_id)).status is RunStatus.succeeded


# ---------------------------------------------------------------- the audit covers decisions


async def test_every_decision_is_bound_into_the_audit_chain(world: Callable[..., World]) -> None:
    w = world(PAYMENT)
    cp_id = await _open(w, "pay", {"amount": 100})
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="fiona"))
    decision = await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="felix"))
    assert decision is not None
    events, decisions = await w.store.audit_events(), await w.store.list_decisions()
    assert verify_decisions(events, decisions).ok
    forged = decision.model_copy(update={"actor": "manny"})
    report = verify_decisions(events, [forged])
    assert not report.ok
    assert f"decision {decision.id} was modified" in (report.problem or "")
    assert "was deleted" in (verify_decisions(events, []).problem or "")
    stray = decision.model_copy(update={"id": "dec_stray", "checkpoint_id": "cp_x"})
    assert "inserted outside" in (verify_decisions(events, [decision, stray]).problem or "")
