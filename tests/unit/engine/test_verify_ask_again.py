"""``verify: {on_fail: ask_again}``: a model checks a person's answer before it counts."""

from __future__ import annotations

import pytest

from engine.commands import Decide
from engine.errors import NeedsDetail, SkillFailed
from engine.model import CheckpointStatus, RunStatus
from engine.ports import LLMResponse
from engine.service import Engine
from engine.testing import FixedClock
from tests.unit.engine.test_nodes_llm import FakeLLM, run_once

ASK_AGAIN = """\
id: v
nodes:
  - id: ask
    type: human
    prompt: "Refund 500?"
    options: [approve, reject, edit]
    response_schema: {type: object, properties: {note: {type: string}}}
    proposed: {note: "Refund sent"}
    assignee: user:mia
    verify: {prompt: "A rejection needs an actionable reason.", on_fail: ask_again}
  - {id: done, type: set, data: {ok: true}}
edges: [{from: ask, to: done, when: "response.action != 'reject'"}]
"""


def _no(question: str) -> LLMResponse:
    return LLMResponse(
        data={"ok": False, "reason": question}, model="m", input_tokens=70, output_tokens=12, cost_usd=0.0004
    )


def _yes() -> LLMResponse:
    return LLMResponse(data={"ok": True, "reason": "fine"}, model="m", input_tokens=60, output_tokens=5)


CP = "cp_3"


def _reject(comment: str) -> Decide:
    return Decide(checkpoint_id=CP, action="reject", actor="mia", channel="slack", comment=comment)


async def _kinds(engine: Engine) -> list[str]:
    return [e.kind for e in await engine.store.audit_events(run_id="run_1")]


async def test_a_vague_answer_is_questioned_and_nothing_is_decided() -> None:
    llm = FakeLLM(_no("Which policy does the refund break?"))
    engine = await run_once(ASK_AGAIN, llm)
    (cp,) = await engine.store.list_checkpoints(open_only=True)
    assert cp.id == CP
    assert await engine.check(_reject("no")) is True
    assert not llm.requests, "check() validates without calling the model"

    with pytest.raises(NeedsDetail) as err:
        await engine.decide(_reject("no"))
    assert err.value.question == "Which policy does the refund break?"
    assert "A rejection needs an actionable reason." in llm.requests[0].prompt
    assert '"comment": "no"' in llm.requests[0].prompt
    fresh = await engine.store.get_checkpoint(cp.id)
    assert (fresh.status, fresh.version) == (CheckpointStatus.open, cp.version)
    assert not await engine.store.list_decisions(checkpoint_id=cp.id)
    assert (await engine.store.get_run("run_1")).status is RunStatus.waiting

    (event,) = [e for e in await engine.store.audit_events(run_id="run_1") if e.kind == "decision.questioned"]
    assert (event.actor, event.channel, event.checkpoint_id) == ("mia", "slack", cp.id)
    assert event.payload["action"] == "reject"
    assert event.payload["comment"] == "no"
    assert event.payload["question"] == "Which policy does the refund break?"
    assert (event.payload["input_tokens"], event.payload["cost_usd"]) == (70, 0.0004)
    (asked,) = [d for d in await engine.store.list_deliveries(checkpoint_id=cp.id) if d.kind != "checkpoint"]
    assert (asked.kind, asked.target) == ("checkpoint_question", "user:mia")
    assert asked.payload["question"] == "Which policy does the refund break?"
    assert (asked.payload["action"], asked.payload["comment"]) == ("reject", "no")
    assert event.payload["delivery"] == asked.id


async def test_the_next_answer_is_checked_again_and_counts_when_it_passes() -> None:
    llm = FakeLLM(_no("Why?"), _yes())
    engine = await run_once(ASK_AGAIN, llm)
    with pytest.raises(NeedsDetail):
        await engine.decide(_reject("no"))
    decision = await engine.decide(_reject("Duplicate of refund R-88, already paid on 2 May."))
    assert decision is not None
    assert decision.comment == "Duplicate of refund R-88, already paid on 2 May."
    assert len(llm.requests) == 2, "checked before it counts, and not once more after the commit"
    assert (await engine.store.get_run("run_1")).status is RunStatus.rejected
    kinds = await _kinds(engine)
    assert kinds.count("decision.questioned") == 1
    assert kinds.index("decision.verified") < kinds.index("decision.recorded")
    verified = [e for e in await engine.store.audit_events(run_id="run_1") if e.kind == "decision.verified"]
    assert verified[0].payload["input_tokens"] == 60
    assert "decision.flagged" not in kinds


async def test_edits_and_approvals_are_checked_too() -> None:
    llm = FakeLLM(_no("Say what you changed and why."), _no("Why approve?"))
    engine = await run_once(ASK_AGAIN, llm)
    edit = Decide(checkpoint_id=CP, action="edit", actor="mia", channel="web", data={"note": "Refunded"})
    with pytest.raises(NeedsDetail):
        await engine.decide(edit)
    with pytest.raises(NeedsDetail):
        await engine.decide(Decide(checkpoint_id=CP, action="approve", actor="mia", channel="slack"))
    events = [e for e in await engine.store.audit_events(run_id="run_1") if e.kind == "decision.questioned"]
    assert events[0].payload["diff"] == {"note": {"before": "Refund sent", "after": "Refunded"}}
    rows = await engine.store.list_deliveries(checkpoint_id=CP)
    asked = [d.payload for d in rows if d.kind == "checkpoint_question"]
    assert [p["action"] for p in asked] == ["edit", "approve"]
    assert asked[0]["data"] == {"note": "Refunded"}


async def test_a_decision_by_policy_is_never_checked() -> None:
    llm = FakeLLM(_no("never asked"))
    timed = ASK_AGAIN.replace("    assignee: user:mia\n", "    assignee: user:mia\n    timeout: 1h\n")
    engine = await run_once(timed, llm)
    command = Decide(
        checkpoint_id=CP,
        action="reject",
        actor="policy:auto_reject",
        channel="scheduler",
        resolved_by="timeout",
        rule="auto_reject",
    )
    assert isinstance(engine.clock, FixedClock)
    engine.clock.advance(3601)
    assert await engine.check(command) is False
    assert await engine.decide(command) is not None
    assert not llm.requests
    assert (await engine.store.get_run("run_1")).status is RunStatus.rejected


async def test_a_verifier_that_cannot_run_lets_the_answer_count() -> None:
    engine = await run_once(ASK_AGAIN, FakeLLM(SkillFailed("Anthropic API 529 overloaded_error")))
    decision = await engine.decide(_reject("no"))
    assert decision is not None
    events = await engine.store.audit_events(run_id="run_1")
    failed = [e for e in events if e.kind == "decision.verify_failed"]
    assert "529" in failed[0].payload["error"]
    assert "decision.questioned" not in [e.kind for e in events]
    assert (await engine.store.get_run("run_1")).status is RunStatus.rejected
