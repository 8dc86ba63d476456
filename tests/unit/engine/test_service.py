"""The engine end to end on in-memory fakes: pause, resume, routing, final states, policy."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.commands import Cancel, Decide
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.model import CheckpointOutcome, ResolvedBy, RunStatus, StepStatus
from tests.unit.engine.conftest import World

REFUND = """\
id: refund
inputs:
  type: object
  properties:
    customer: {type: string}
    amount: {type: number, minimum: 0}
  required: [customer, amount]
nodes:
  - id: draft
    type: set
    data: {message: "Refund {{ inputs.customer }}", amount: "{{ inputs.amount }}"}
  - id: approval
    type: human
    prompt: "Refund {{ inputs.amount }}?"
    context: {message: "{{ nodes.draft.data.message }}"}
    response_schema:
      type: object
      properties: {message: {type: string, minLength: 3}}
      required: [message]
    assignee: role:manager
  - id: send
    type: http
    request: {method: POST, url: "https://billing.test/refunds", json: {amount: "{{ inputs.amount }}"}}
  - id: tell
    type: notify
    text: "Sent: {{ nodes.approval.data.message if 'approval' in nodes else nodes.draft.data.message }}"
edges:
  - {from: draft, to: approval, when: "inputs.amount > 100"}
  - {from: draft, to: send, when: "inputs.amount <= 100"}
  - {from: approval, to: send, when: "response.action == 'approve' || response.action == 'edit'"}
  - {from: send, to: tell}
"""


async def _start(w: World, amount: float = 250, requester: str = "alice") -> str:
    run = await w.engine.start("refund", {"customer": "ACME", "amount": amount}, requester=requester)
    await w.engine.drive(run.id)
    return run.id


async def _open_cp(w: World, run_id: str) -> str:
    cps = await w.store.list_checkpoints(run_id=run_id, open_only=True)
    assert len(cps) == 1
    return cps[0].id


async def test_small_refund_runs_straight_through(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    run_id = await _start(w, amount=50)
    run = await w.store.get_run(run_id)
    assert run.status is RunStatus.succeeded
    steps = await w.store.list_steps(run_id)
    assert [s.node_id for s in steps] == ["draft", "send", "tell"]
    assert all(s.status is StepStatus.succeeded for s in steps)
    assert w.http.requests[0].json_body == {"amount": 50}


async def test_pause_edit_resume(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    run_id = await _start(w)
    assert (await w.store.get_run(run_id)).status is RunStatus.waiting
    cp_id = await _open_cp(w, run_id)
    cp = await w.store.get_checkpoint(cp_id)
    assert cp.proposed == {"message": "Refund ACME"}
    assert cp.assignees == ["role:manager"]
    decision = await w.engine.decide(
        Decide(checkpoint_id=cp_id, action="modify", actor="mia", data={"message": "Refund ACME, sorry"})
    )
    assert decision is not None
    assert decision.action == "edit"
    assert decision.diff == {"message": {"before": "Refund ACME", "after": "Refund ACME, sorry"}}
    assert decision.shown_hash == cp.shown_hash
    run = await w.store.get_run(run_id)
    assert run.status is RunStatus.succeeded
    tell = next(s for s in await w.store.list_steps(run_id) if s.node_id == "tell")
    assert tell.output is not None
    assert tell.output.text == "Sent: Refund ACME, sorry"


async def test_http_node_sends_stable_idempotency_key(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    await _start(w, amount=10)
    await _start(w, amount=10)
    keys = [r.headers["Idempotency-Key"] for r in w.http.requests]
    assert len(set(keys)) == 2
    assert all(k.startswith("so-") for k in keys)


async def test_invalid_edit_keeps_checkpoint_open(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    run_id = await _start(w)
    cp_id = await _open_cp(w, run_id)
    with pytest.raises(InvalidInput) as info:
        await w.engine.decide(Decide(checkpoint_id=cp_id, action="edit", actor="mia", data={"message": "x"}))
    assert "message" in info.value.errors
    assert (await w.store.get_checkpoint(cp_id)).status.value == "open"


async def test_reject_without_edge_ends_rejected(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    run_id = await _start(w)
    cp_id = await _open_cp(w, run_id)
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="reject", actor="manny", comment="no"))
    run = await w.store.get_run(run_id)
    assert run.status is RunStatus.rejected
    cp = await w.store.get_checkpoint(cp_id)
    assert cp.outcome is CheckpointOutcome.rejected


async def test_only_assignees_and_not_the_requester(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    run_id = await _start(w, requester="mia")
    cp_id = await _open_cp(w, run_id)
    with pytest.raises(NotAllowed, match="you started this run"):
        await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="mia"))
    with pytest.raises(NotAllowed, match="only the assignees"):
        await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="mallory"))
    with pytest.raises(NotAllowed, match="not an option"):
        await w.engine.decide(Decide(checkpoint_id=cp_id, action="answer", actor="manny"))
    assert await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="manny")) is not None


async def test_second_decision_gets_conflict_naming_winner(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    run_id = await _start(w)
    cp_id = await _open_cp(w, run_id)
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="mia"))
    with pytest.raises(Conflict, match="already approved by mia at") as info:
        await w.engine.decide(Decide(checkpoint_id=cp_id, action="reject", actor="manny"))
    assert info.value.winner == "mia"
    decisions = await w.store.list_decisions(run_id=run_id)
    assert len(decisions) == 1


async def test_timeout_is_never_a_person(make_world: Callable[..., World]) -> None:
    w = make_world(
        REFUND.replace("    assignee: role:manager\n", "    assignee: role:manager\n    timeout: 1h\n")
    )
    run_id = await _start(w)
    cp_id = await _open_cp(w, run_id)
    w.clock.advance(3601)
    await w.engine.decide(
        Decide(
            checkpoint_id=cp_id,
            action="reject",
            actor="policy:timeout",
            resolved_by="timeout",
            rule="auto_reject",
        )
    )
    decision = (await w.store.list_decisions(run_id=run_id))[0]
    assert decision.resolved_by is ResolvedBy.timeout
    assert (await w.store.get_checkpoint(cp_id)).outcome is CheckpointOutcome.timed_out
    with pytest.raises(Conflict, match=r"policy \(auto_reject\)"):
        await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="mia"))


async def test_inputs_are_validated(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    with pytest.raises(InvalidInput) as info:
        await w.engine.start("refund", {"customer": "ACME", "amount": -1}, requester="a")
    assert set(info.value.errors) == {"amount"}
    with pytest.raises(InvalidInput) as info:
        await w.engine.start("refund", {}, requester="a")
    assert set(info.value.errors) == {"customer", "amount"}
    with pytest.raises(NotFound, match="did you mean refund"):
        await w.engine.start("refnd", {}, requester="a")


async def test_no_matching_edge_fails_with_clear_message(make_world: Callable[..., World]) -> None:
    text = REFUND.replace('when: "inputs.amount <= 100"', 'when: "inputs.amount < 0"')
    w = make_world(text)
    run_id = await _start(w, amount=50)
    run = await w.store.get_run(run_id)
    assert run.status is RunStatus.failed
    assert run.reason is not None
    assert "node 'draft' finished but no outgoing edge matches" in run.reason


async def test_failed_http_fails_run(make_world: Callable[..., World]) -> None:
    from engine.ports import HttpResponse

    w = make_world(REFUND)
    w.http.responses = [HttpResponse(status=402, text="payment required")]
    run_id = await _start(w, amount=5)
    run = await w.store.get_run(run_id)
    assert run.status is RunStatus.failed
    assert "answered 402" in (run.reason or "")


async def test_cancel_rules(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    run_id = await _start(w)
    with pytest.raises(NotAllowed):
        await w.engine.cancel(Cancel(run_id=run_id, actor="mallory"))
    run = await w.engine.cancel(Cancel(run_id=run_id, actor="olga"))
    assert run.status is RunStatus.cancelled
    cp = (await w.store.list_checkpoints(run_id=run_id))[0]
    assert cp.outcome is CheckpointOutcome.cancelled
    with pytest.raises(Conflict):
        await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))


async def test_run_is_pinned_to_its_version(make_world: Callable[..., World]) -> None:
    from engine.loader import load_workflow_text
    from tests.unit.engine.conftest import ROLES

    w = make_world(REFUND)
    run_id = await _start(w)
    changed = load_workflow_text(REFUND.replace("Sent: ", "CHANGED: "), file="test.yml", roles=ROLES)
    w.catalog._current["refund"] = changed  # the file was edited while the run waited
    cp_id = await _open_cp(w, run_id)
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="mia"))
    tell = next(s for s in await w.store.list_steps(run_id) if s.node_id == "tell")
    assert tell.output is not None
    assert tell.output.text.startswith("Sent: ")
