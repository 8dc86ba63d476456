"""Agent nodes end to end: ``bot.wiring.build`` on SQLite, the real Anthropic client against a
local fake Messages API, the real bubblewrap sandbox and the shipped skill library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import Settings
from bot.wiring import Container, build
from engine.commands import Decide
from engine.model import RunStatus, Step, StepStatus
from tests.e2e.conftest import RecordingSender
from tests.fakes.anthropic import FakeAnthropic

LIBRARY = Path("skills/library").resolve()
SCHEMA = "{type: object, properties: {message: {type: string, minLength: 3}, confidence: {type: number}}, required: [message, confidence]}"  # noqa: E501

DRAFT = f"""\
id: draft
inputs: {{type: object, properties: {{customer: {{type: string}}}}}}
nodes:
  - id: draft
    type: llm
    system: "You are a careful finance assistant."
    prompt: "Draft a refund note for {{{{ inputs.customer }}}}."
    output_schema: {SCHEMA}
    max_tokens: 200
  - id: note
    type: set
    data: {{message: "{{{{ nodes.draft.data.message }}}}"}}
edges: [{{from: draft, to: note}}]
"""

EXTRACT = """\
id: extract
nodes:
  - id: email
    type: set
    text: "Hi, please refund order 1042, it came broken. Thanks, Jo"
  - id: fields
    type: llm
    extract:
      from: email
      schema: {type: object, properties: {order: {type: integer}}, required: [order]}
edges: [{from: email, to: fields}]
"""

CODE = """\
id: report
inputs: {type: object, properties: {rows: {type: string}}}
nodes:
  - id: report
    type: code
    run: [python3, report.py, --format, json]
    stdin: "{{ inputs.rows }}"
    files:
      report.py: |
        import json, os, sys
        rows = [r.split(",") for r in open("input.csv").read().splitlines()]
        total = sum(float(amount) for _, amount in rows)
        open("summary.md", "w").write(f"# {len(rows)} refunds, {total:g} USD\\n")
        lines = len(sys.stdin.read().splitlines())
        print(json.dumps({"count": len(rows), "total": total, "stdin_lines": lines,
                          "key": os.environ["SIGNOFF_IDEMPOTENCY_KEY"], "region": os.environ["REGION"],
                          "home": os.environ["HOME"]}))
      input.csv: "{{ inputs.rows }}"
    env: {REGION: eu-west}
    timeout: 20s
    limits: {memory: 256MB, cpu: 10s}
  - id: publish
    type: code
    run: "cat report/summary.md"
    artifacts: ["{{ nodes.report.files }}"]
edges: [{from: report, to: publish}]
"""

SPIN = """\
id: spin
nodes:
  - {id: spin, type: code, run: "while :; do :; done", timeout: 1s, limits: {cpu: 30s}}
edges: []
"""

POLICY = (Path("workflows") / "refund_with_policy.yml").read_text(encoding="utf-8")


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    """A local Messages API."""
    async with FakeAnthropic(api_key="sk-test") as server:
        yield server


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    """The workflows this module runs."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name, text in {
        "draft": DRAFT,
        "extract": EXTRACT,
        "code": CODE,
        "spin": SPIN,
        "policy": POLICY,
    }.items():
        (folder / f"{name}.yml").write_text(text, encoding="utf-8")
    return folder


def _settings(tmp_path: Path, workflows_dir: Path, fake: FakeAnthropic | None) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path}/s.db",
        workflows_dir=workflows_dir,
        skills_dir=LIBRARY,
        roles_file=Path("roles.yml").resolve(),
        workspace_dir=tmp_path / "workspaces",
        anthropic_api_key="sk-test" if fake else None,
        anthropic_base_url=fake.base_url if fake else None,
        sandbox="bwrap",
    )


@pytest.fixture
async def agent(tmp_path: Path, workflows_dir: Path, fake: FakeAnthropic) -> AsyncIterator[Container]:
    """A process with an LLM, bubblewrap and the skill library."""
    built = await build(_settings(tmp_path, workflows_dir, fake), sender=RecordingSender())
    assert not built.catalog.errors, [str(e) for e in built.catalog.errors]
    yield built
    await built.close()


async def _run(c: Container, workflow: str, inputs: dict[str, Any] | None = None) -> tuple[str, list[Step]]:
    run = await c.engine.start(workflow, inputs or {}, requester="alice")
    await c.engine.drive(run.id)
    return run.id, await c.store.list_steps(run.id)


async def test_typed_data_through_the_tool_call_with_tokens_and_cost(
    agent: Container, fake: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.reply_tool({"message": "Refund approved", "confidence": 0.9}, input_tokens=1200, output_tokens=300)
    run_id, steps = await _run(agent, "draft", {"customer": "ACME"})
    draft = steps[0]
    assert draft.output is not None
    assert draft.output.data == {"message": "Refund approved", "confidence": 0.9}
    assert steps[1].output is not None
    assert steps[1].output.data == {"message": "Refund approved"}
    assert (draft.input_tokens, draft.output_tokens) == (1200, 300)
    assert draft.cost_usd == pytest.approx((1200 * 3 + 300 * 15) / 1_000_000)
    body = fake.requests[0]
    assert body["system"] == "You are a careful finance assistant."
    assert body["tool_choice"] == {"type": "tool", "name": "submit"}
    assert body["model"] == "claude-sonnet-4-6"
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{tmp_path}/s.db")
    shown = await asyncio.to_thread(CliRunner().invoke, app, ["show", run_id, "--json"])
    assert shown.exit_code == 0, shown.output
    step = json.loads(shown.output)["steps"][0]
    assert (step["input_tokens"], step["output_tokens"]) == (1200, 300)
    assert step["cost_usd"] == pytest.approx(0.0081)


async def test_invalid_structured_output_gets_one_repair(agent: Container, fake: FakeAnthropic) -> None:
    fake.reply_tool({"message": "no"})
    fake.reply_tool({"message": "Refund approved", "confidence": 1})
    _, steps = await _run(agent, "draft", {"customer": "ACME"})
    assert steps[0].status is StepStatus.succeeded
    assert len(fake.requests) == 2
    repair = fake.requests[1]["messages"][-1]["content"][0]
    assert repair["type"] == "tool_result"
    assert "confidence: is required" in repair["content"]
    assert steps[0].input_tokens == 20


async def test_rate_limit_is_retried(agent: Container, fake: FakeAnthropic) -> None:
    fake.rate_limited(retry_after=0)
    fake.overloaded()
    fake.reply_tool({"message": "Refund approved", "confidence": 1})
    _, steps = await _run(agent, "draft", {"customer": "ACME"})
    assert steps[0].status is StepStatus.succeeded
    assert len(fake.requests) == 3
    assert steps[0].input["attempts"] == 3


async def test_extract_falls_back_to_the_raw_text(agent: Container, fake: FakeAnthropic) -> None:
    fake.reply_tool({"order": "ten forty-two"})
    fake.reply_tool({"order": "still text"})
    _, steps = await _run(agent, "extract")
    fields = steps[1]
    assert fields.status is StepStatus.succeeded
    assert fields.output is not None
    assert fields.output.data["extraction_failed"] is True
    assert fields.output.data["text"].startswith("Hi, please refund order 1042")
    assert "order 1042" in fake.requests[0]["messages"][0]["content"]
    assert fake.requests[0]["max_tokens"] == 512


async def test_extract_gives_typed_fields(agent: Container, fake: FakeAnthropic) -> None:
    fake.reply_tool({"order": 1042})
    _, steps = await _run(agent, "extract")
    assert steps[1].output is not None
    assert steps[1].output.data == {"order": 1042}


async def test_code_node_with_files_stdin_env_and_artifacts(agent: Container, tmp_path: Path) -> None:
    run_id, steps = await _run(agent, "report", {"rows": "acme,120\nglobex,30.5"})
    report, publish = steps
    assert report.status is StepStatus.succeeded, report.error
    assert report.output is not None
    data = report.output.data
    assert (data["count"], data["total"], data["stdin_lines"], data["region"]) == (2, 150.5, 2, "eu-west")
    assert data["key"].startswith("so-")
    assert data["home"] == "/workspace"
    assert report.output.files == ["report/summary.md"]
    assert publish.output is not None
    assert publish.output.text == "# 2 refunds, 150.5 USD\n", "the artifact, read by the next step"
    assert (await agent.store.get_run(run_id)).status is RunStatus.succeeded
    assert not (tmp_path / "workspaces" / run_id).exists(), "deleted once the run ended"


async def test_code_node_limit_kill_is_reported(agent: Container) -> None:
    run_id, steps = await _run(agent, "spin")
    assert steps[0].error == "killed: wall time 1s exceeded"
    run = await agent.store.get_run(run_id)
    assert run.status is RunStatus.failed
    assert "killed: wall time 1s exceeded" in (run.reason or "")


async def test_skill_node_decides_and_only_review_reaches_a_person(agent: Container) -> None:
    inputs = {"customer": "ACME", "amount": 80, "customer_tier": "gold", "reason": "arrived damaged"}
    auto_id, steps = await _run(agent, "refund-with-policy", inputs)
    assert steps[0].output is not None
    assert steps[0].output.data["decision"] == "auto"
    assert (await agent.store.get_run(auto_id)).status is RunStatus.succeeded
    assert steps[1].output is not None
    assert steps[1].output.data["resolved_by"] == "policy"
    review_id, _ = await _run(agent, "refund-with-policy", {**inputs, "reason": "my card was stolen"})
    assert (await agent.store.get_run(review_id)).status is RunStatus.waiting
    (cp,) = await agent.store.list_checkpoints(run_id=review_id, open_only=True)
    assert "high risk" in cp.prompt
    await agent.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia", channel="cli"))
    assert (await agent.store.get_run(review_id)).status is RunStatus.succeeded
    denied_id, _ = await _run(agent, "refund-with-policy", {**inputs, "amount": 9000})
    steps = await agent.store.list_steps(denied_id)
    assert [s.node_id for s in steps] == ["policy", "denied"]


async def test_without_an_api_key_llm_workflows_fail_validation(tmp_path: Path, workflows_dir: Path) -> None:
    c = await build(_settings(tmp_path, workflows_dir, None), sender=RecordingSender())
    try:
        assert "draft" not in c.catalog.ids()
        assert {"report", "refund-with-policy", "spin"} <= set(c.catalog.ids())
        messages = "\n".join(str(e) for e in c.catalog.errors)
        assert "draft.yml:5: node 'draft': field 'type': llm nodes need a language model" in messages
        assert "set ANTHROPIC_API_KEY" in messages
    finally:
        await c.close()
