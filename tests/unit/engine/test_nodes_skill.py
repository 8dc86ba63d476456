"""The ``skill`` node on a fake SkillRunner, load-time checks, and the shipped example workflows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.catalog import WorkflowCatalog
from engine.errors import InvalidInput, InvalidWorkflow, SkillFailed
from engine.loader import load_directory, load_workflow_text
from engine.model import RunStatus, StepStatus
from engine.nodes.base import NodeDeps, SkillRunner
from engine.ports import LLM, LLMRequest, LLMResponse
from engine.roles import load_roles
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds
from skills.registry import RegistryRunner, SkillRegistry
from skills.sandbox import SubprocessSandbox


class FakeSkills:
    """A SkillRunner: known refs, scripted outputs (or errors), every call recorded."""

    def __init__(self, outputs: dict[str, dict[str, Any] | Exception]) -> None:
        self.outputs = outputs
        self.calls: list[tuple[str, dict[str, Any], Path, str]] = []

    def exists(self, ref: str) -> str | None:
        return None if ref in self.outputs else f"unknown skill {ref}"

    async def run(
        self, ref: str, inputs: dict[str, Any], *, workspace: Path, key: str, llm: LLM | None = None
    ) -> dict[str, Any]:
        self.calls.append((ref, inputs, workspace, key))
        out = self.outputs[ref]
        if isinstance(out, Exception):
            raise out
        return out


class _AnyLLM:
    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise SkillFailed("not called in these tests")


def library_runner(*, with_llm: bool = True) -> SkillRunner:
    """A RegistryRunner over the shipped library (nothing is run through it)."""
    registry = SkillRegistry.load(Path("skills/library"))
    return RegistryRunner(
        registry, sandbox=SubprocessSandbox(), llm=_AnyLLM() if with_llm else None, model="m"
    )


POLICY = """\
id: pol
inputs: {type: object, properties: {amount: {type: number}}}
nodes:
  - id: policy
    type: skill
    skill: refund-policy@1.0.0
    with: {amount: "{{ inputs.amount }}", customer_tier: gold, reason: "{{ 'damaged' }}"}
  - id: use
    type: set
    data: {d: "{{ nodes.policy.data.decision }}"}
edges: [{from: policy, to: use, when: "nodes.policy.data.decision == 'auto'"}]
"""


async def _run(text: str, skills: FakeSkills, tmp_path: Path, amount: float = 80) -> Engine:
    wf = load_workflow_text(text, file="t.yml", skills=skills)
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), skills=skills, workspace_root=tmp_path)
    engine = Engine(store=InMemoryRunStore(), catalog=WorkflowCatalog({wf.id: wf}), deps=deps, owner="t")
    run = await engine.start(wf.id, {"amount": amount}, requester="alice")
    await engine.drive(run.id)
    return engine


async def test_skill_outputs_become_data_and_inputs_are_rendered(tmp_path: Path) -> None:
    skills = FakeSkills({"refund-policy@1.0.0": {"decision": "auto", "reasons": ["ok"]}})
    engine = await _run(POLICY, skills, tmp_path)
    assert (await engine.store.get_run("run_1")).status is RunStatus.succeeded
    _ref, inputs, workspace, key = skills.calls[0]
    assert inputs == {"amount": 80, "customer_tier": "gold", "reason": "damaged"}
    assert workspace == tmp_path / "run_1" / "policy"
    assert key.startswith("so-")
    steps = await engine.store.list_steps("run_1")
    assert steps[0].output is not None
    assert steps[0].output.data["decision"] == "auto"
    assert steps[1].output is not None
    assert steps[1].output.data == {"d": "auto"}


async def test_text_is_the_outputs_text_field_when_there_is_one(tmp_path: Path) -> None:
    text = POLICY.replace("refund-policy@1.0.0", "pii-redact@1.0.0").replace(
        "edges: [{from: policy, to: use, when: \"nodes.policy.data.decision == 'auto'\"}]", "edges: []"
    )
    text = text.replace('  - id: use\n    type: set\n    data: {d: "{{ nodes.policy.data.decision }}"}\n', "")
    skills = FakeSkills({"pii-redact@1.0.0": {"text": "mail [EMAIL]", "total": 1}})
    engine = await _run(text, skills, tmp_path)
    step = (await engine.store.list_steps("run_1"))[0]
    assert step.output is not None
    assert step.output.text == "mail [EMAIL]"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (SkillFailed("skill refund-policy@1.0.0 exited with code 1: boom"), "exited with code 1: boom"),
        (InvalidInput("invalid inputs for skill x", {"amount": "must be > 0"}), "amount: must be > 0"),
    ],
)
async def test_skill_errors_fail_the_step(tmp_path: Path, error: Exception, expected: str) -> None:
    engine = await _run(POLICY, FakeSkills({"refund-policy@1.0.0": error}), tmp_path)
    step = (await engine.store.list_steps("run_1"))[0]
    assert step.status is StepStatus.failed
    assert expected in (step.error or "")


@pytest.mark.parametrize(
    ("ref", "skills", "message"),
    [
        ("refund-policy", FakeSkills({}), "is not pinned; use refund-policy@<version>"),
        ("refund-policy@latest", FakeSkills({}), "is not pinned"),
        ("refund-policy@9.9.9", FakeSkills({}), "unknown skill refund-policy@9.9.9"),
        ("refund-policy@1.0.0", None, "no skill runner is configured"),
    ],
)
def test_unpinned_unknown_or_unrunnable_skills_fail_loading(
    ref: str, skills: FakeSkills | None, message: str
) -> None:
    text = f"id: t\nnodes:\n  - {{id: s, type: skill, skill: '{ref}'}}\nedges: []\n"
    with pytest.raises(InvalidWorkflow) as err:
        load_workflow_text(text, file="t.yml", skills=skills)
    assert "t.yml:3: node 's': field 'skill'" in str(err.value)
    assert message in str(err.value)


def test_registry_runner_explains_unknown_versions_and_missing_llm() -> None:
    runner = library_runner(with_llm=False)
    assert runner.exists("refund-policy@1.0.0") is None
    assert "versions: 1.0.0" in (runner.exists("refund-policy@2.0.0") or "")
    assert "set ANTHROPIC_API_KEY" in (runner.exists("summarize-ticket@1.0.0") or "")


def test_shipped_examples_validate_with_the_library_and_explain_a_missing_key() -> None:
    roles = load_roles(Path("roles.yml"))
    good, bad = load_directory(
        Path("workflows"), roles=roles, skills=library_runner(with_llm=False), llm_available=False
    )
    assert not bad, [str(b) for b in bad]  # the default folder needs no API key
    assert {"refund-with-policy", "redacted-ticket-review"} <= set(good)
    llm_dir = Path("workflows/with-llm")
    good, bad = load_directory(llm_dir, roles=roles, skills=library_runner())
    assert not bad, [str(b) for b in bad]
    assert "ticket-triage" in good
    good, bad = load_directory(
        llm_dir, roles=roles, skills=library_runner(with_llm=False), llm_available=False
    )
    assert [b.issues[0].file for b in bad] == ["workflows/with-llm/ticket_triage_llm.yml"]
    assert "ANTHROPIC_API_KEY" in str(bad[0])


def test_skills_package_exports() -> None:
    import skills
    from skills.llm import AnthropicLLM

    assert skills.__all__ == [
        "PRICES",
        "AnthropicLLM",
        "FixtureResult",
        "RegistryRunner",
        "Skill",
        "SkillRegistry",
        "choose_sandbox",
        "run_skill",
        "test_skill",
    ]
    assert skills.AnthropicLLM is AnthropicLLM
    assert all(getattr(skills, name) is not None for name in skills.__all__)


SUMMARY = """\
id: sum
nodes:
  - id: summary
    type: skill
    skill: summarize-ticket@1.0.0
    with: {ticket: "My order 42 arrived broken, please refund."}
edges: []
"""


class _ScriptedLLM:
    def __init__(self, *answers: LLMResponse) -> None:
        self.answers = list(answers)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return self.answers.pop(0)


async def test_a_prompt_skill_stores_its_tokens_and_cost_on_the_step(tmp_path: Path) -> None:
    data = {"summary": "Order 42 arrived broken; the customer wants a refund.", "sentiment": "negative"}
    answer = LLMResponse(
        data={**data, "urgency": "medium"}, model="m", input_tokens=900, output_tokens=60, cost_usd=0.0036
    )
    runner = library_runner()  # its own LLM fails if called: the step's metered one is used
    wf = load_workflow_text(SUMMARY, file="t.yml", skills=runner)
    deps = NodeDeps(
        clock=FixedClock(), ids=SeqIds(), skills=runner, workspace_root=tmp_path, llm=_ScriptedLLM(answer)
    )
    engine = Engine(store=InMemoryRunStore(), catalog=WorkflowCatalog({wf.id: wf}), deps=deps, owner="t")
    run = await engine.start(wf.id, {}, requester="alice")
    await engine.drive(run.id)
    (step,) = await engine.store.list_steps(run.id)
    assert step.status is StepStatus.succeeded, step.error
    assert (step.input_tokens, step.output_tokens, step.cost_usd) == (900, 60, 0.0036)


async def test_a_skill_that_does_not_call_the_model_stores_no_usage(tmp_path: Path) -> None:
    skills = FakeSkills({"refund-policy@1.0.0": {"decision": "auto", "reasons": ["ok"]}})
    wf = load_workflow_text(POLICY, file="t.yml", skills=skills)
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), skills=skills, workspace_root=tmp_path, llm=_AnyLLM())
    engine = Engine(store=InMemoryRunStore(), catalog=WorkflowCatalog({wf.id: wf}), deps=deps, owner="t")
    run = await engine.start(wf.id, {"amount": 80}, requester="alice")
    await engine.drive(run.id)
    step = (await engine.store.list_steps(run.id))[0]
    assert (step.input_tokens, step.output_tokens, step.cost_usd) == (None, None, None)
