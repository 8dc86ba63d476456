"""The ``llm`` node on a fake LLM port: prompts, typed data, extract and its fallback, load checks."""

from __future__ import annotations

from typing import Any

import pytest

from engine.catalog import WorkflowCatalog
from engine.commands import Decide
from engine.errors import InvalidWorkflow, SkillFailed
from engine.loader import load_workflow_text
from engine.model import RunStatus, StepStatus
from engine.nodes.base import NodeDeps
from engine.ports import LLMRequest, LLMResponse
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds


class FakeLLM:
    """The LLM port: scripted answers (or errors) in order; every request recorded."""

    def __init__(self, *answers: LLMResponse | SkillFailed) -> None:
        self.answers = list(answers)
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else LLMResponse(text="ok", model=request.model)
        if isinstance(answer, SkillFailed):
            raise answer
        return answer


async def run_once(text: str, llm: FakeLLM | None, inputs: dict[str, Any] | None = None) -> Engine:
    """Load ``text``, start a run with ``inputs`` and drive it until it pauses or ends."""
    wf = load_workflow_text(text, file="t.yml", llm_available=True)
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), llm=llm, default_model="claude-test")
    engine = Engine(store=InMemoryRunStore(), catalog=WorkflowCatalog({wf.id: wf}), deps=deps, owner="t")
    run = await engine.start(wf.id, inputs or {}, requester="alice")
    await engine.drive(run.id)
    return engine


TYPED = """\
id: typed
nodes:
  - id: draft
    type: llm
    system: "You are terse."
    prompt: "Refund note for {{ inputs.customer }}"
    output_schema: {type: object, properties: {message: {type: string}}, required: [message]}
    max_tokens: 300
    temperature: 0.1
  - id: after
    type: set
    data: {m: "{{ nodes.draft.data.message }}"}
edges: [{from: draft, to: after}]
"""


async def test_typed_output_becomes_data_and_usage_is_stored() -> None:
    answer = LLMResponse(
        text="", data={"message": "Refunded"}, model="claude-test", input_tokens=120, output_tokens=30,
        cost_usd=0.0009,
    )  # fmt: skip
    llm = FakeLLM(answer)
    engine = await run_once(TYPED, llm, {"customer": "ACME"})
    request = llm.requests[0]
    assert (request.system, request.prompt, request.model) == (
        "You are terse.",
        "Refund note for ACME",
        "claude-test",
    )
    assert (request.max_tokens, request.temperature) == (300, 0.1)
    assert request.output_schema is not None
    steps = await engine.store.list_steps("run_1")
    draft = steps[0]
    assert draft.output is not None
    assert draft.output.data == {"message": "Refunded"}
    assert draft.output.text == '{"message": "Refunded"}'
    assert (draft.input_tokens, draft.output_tokens, draft.cost_usd) == (120, 30, 0.0009)
    assert steps[1].output is not None
    assert steps[1].output.data == {"m": "Refunded"}


async def test_free_text_answer_is_the_text() -> None:
    text = "id: t\nnodes:\n  - {id: a, type: llm, model: claude-x, prompt: hi}\nedges: []\n"
    llm = FakeLLM(LLMResponse(text="Hello there", model="claude-x"))
    engine = await run_once(text, llm)
    step = (await engine.store.list_steps("run_1"))[0]
    assert step.output is not None
    assert (step.output.text, step.output.data) == ("Hello there", {})
    assert llm.requests[0].model == "claude-x"


async def test_api_failure_fails_the_step_with_its_message() -> None:
    text = "id: t\nnodes:\n  - {id: a, type: llm, prompt: hi}\nedges: []\n"
    engine = await run_once(text, FakeLLM(SkillFailed("Anthropic API 529 overloaded_error", retryable=True)))
    run = await engine.store.get_run("run_1")
    assert run.status is RunStatus.failed
    assert "529 overloaded_error" in (run.reason or "")


EXTRACT = """\
id: ex
nodes:
  - id: source
    type: set
    text: "Order 42 for ACME, 3 units"
  - id: fields
    type: llm
    extract:
      from: source
      schema: {type: object, properties: {order: {type: integer}}, required: [order]}
edges: [{from: source, to: fields}]
"""


async def test_extract_reads_upstream_text_in_a_bounded_call() -> None:
    llm = FakeLLM(LLMResponse(data={"order": 42}, model="claude-test", input_tokens=50, output_tokens=8))
    engine = await run_once(EXTRACT, llm)
    request = llm.requests[0]
    assert "Order 42 for ACME" in request.prompt
    assert request.max_tokens == 512
    step = (await engine.store.list_steps("run_1"))[1]
    assert step.output is not None
    assert step.output.data == {"order": 42}
    assert step.input_tokens == 50


async def test_extract_falls_back_to_the_raw_text() -> None:
    engine = await run_once(EXTRACT, FakeLLM(SkillFailed("does not match output_schema after one repair")))
    step = (await engine.store.list_steps("run_1"))[1]
    assert step.status is StepStatus.succeeded
    assert step.output is not None
    assert step.output.text == "Order 42 for ACME, 3 units"
    assert step.output.data["text"] == "Order 42 for ACME, 3 units"
    assert step.output.data["extraction_failed"] is True
    assert "repair" in step.output.data["error"]


async def test_no_llm_at_run_time_is_a_clear_failure() -> None:
    engine = await run_once(TYPED, None, {"customer": "ACME"})
    run = await engine.store.get_run("run_1")
    assert "ANTHROPIC_API_KEY" in (run.reason or "")


def test_without_an_llm_validation_fails_and_names_the_key() -> None:
    with pytest.raises(InvalidWorkflow) as err:
        load_workflow_text(TYPED, file="t.yml", llm_available=False)
    assert "t.yml:4: node 'draft': field 'type': llm nodes need a language model" in str(err.value)
    assert "ANTHROPIC_API_KEY" in str(err.value)


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ("{id: a, type: llm}", "needs a prompt"),
        ("{id: a, type: llm, prompt: x, output_schema: {type: array}}", "must have type: object"),
        ("{id: a, type: llm, prompt: x, output_schema: {type: 3}}", "not a valid JSON Schema"),
        ("{id: a, type: llm, prompt: x, temperature: 3}", "less than or equal to 1"),
        ("{id: a, type: llm, extract: {from: nope, schema: {type: object}}}", "unknown node 'nope'"),
        ("{id: a, type: llm, prompt: x, extract: {from: b, schema: {type: object}}}", "leave out prompt"),
        (
            "{id: a, type: llm, extract: {from: b, schema: {type: object}}}",
            "'b' is not a node that runs before",
        ),
    ],
)
def test_load_time_checks(node: str, message: str) -> None:
    text = f"id: t\nnodes:\n  - {node}\n  - {{id: b, type: set, text: x}}\nedges: [{{from: a, to: b}}]\n"
    with pytest.raises(InvalidWorkflow) as err:
        load_workflow_text(text, file="t.yml")
    assert message in str(err.value)


VERIFIED = """\
id: v
nodes:
  - id: ask
    type: human
    prompt: "Refund 500?"
    options: [approve, reject]
    assignee: user:mia
    verify: {prompt: "A rejection needs an actionable reason.", on_fail: flag}
  - {id: done, type: set, data: {ok: true}}
edges: [{from: ask, to: done}]
"""


async def _decide(llm: FakeLLM, action: str, comment: str) -> Engine:
    engine = await run_once(VERIFIED, llm)
    (cp,) = await engine.store.list_checkpoints(open_only=True)
    command = Decide(checkpoint_id=cp.id, action=action, actor="mia", channel="cli", comment=comment)
    await engine.decide(command)
    return engine


async def test_verifier_flags_a_decision_that_stands() -> None:
    verdict = LLMResponse(data={"ok": False, "reason": "no reason given"}, model="m", input_tokens=40)
    llm = FakeLLM(verdict)
    engine = await _decide(llm, "approve", "fine")
    assert "A rejection needs an actionable reason." in llm.requests[0].prompt
    assert '"comment": "fine"' in llm.requests[0].prompt
    assert (await engine.store.get_run("run_1")).status is RunStatus.succeeded
    events = await engine.store.audit_events(run_id="run_1")
    flagged = [e for e in events if e.kind == "decision.flagged"]
    assert len(flagged) == 1
    assert flagged[0].payload["reason"] == "no reason given"
    assert flagged[0].payload["input_tokens"] == 40
    updates = [d for d in await engine.store.list_deliveries(run_id="run_1") if d.payload.get("flagged")]
    assert [d.kind for d in updates] == ["checkpoint_update"]


async def test_a_passing_verdict_records_nothing() -> None:
    engine = await _decide(
        FakeLLM(LLMResponse(data={"ok": True, "reason": "fine"}, model="m")), "reject", "dup"
    )
    kinds = [e.kind for e in await engine.store.audit_events(run_id="run_1")]
    assert "decision.flagged" not in kinds


async def test_a_verifier_that_cannot_run_is_recorded() -> None:
    engine = await _decide(FakeLLM(SkillFailed("Anthropic API 500 api_error")), "approve", "ok")
    events = [
        e for e in await engine.store.audit_events(run_id="run_1") if e.kind == "decision.verify_failed"
    ]
    assert "500 api_error" in events[0].payload["error"]
    assert (await engine.store.get_run("run_1")).status is RunStatus.succeeded


@pytest.mark.parametrize("on_fail", ["flag", "ask_again"])
def test_verify_needs_a_language_model(on_fail: str) -> None:
    text = VERIFIED.replace("on_fail: flag", f"on_fail: {on_fail}")
    with pytest.raises(InvalidWorkflow) as err:
        load_workflow_text(text, file="t.yml", llm_available=False)
    assert "node 'ask': field 'verify': verify needs a language model" in str(err.value)
    assert "ask" in load_workflow_text(text, file="t.yml", llm_available=True).nodes
