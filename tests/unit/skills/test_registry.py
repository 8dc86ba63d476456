"""The skill library: loading, pinning, immutability, and running fixtures for real."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.errors import InvalidInput, InvalidWorkflow, NotFound, SkillFailed
from engine.ports import Sandbox, SandboxRequest, SandboxResult
from skills.llm import AnthropicLLM
from skills.registry import LOCK_FILE, RegistryRunner, SkillRegistry, content_hash, run_skill, test_skill
from skills.sandbox import SubprocessSandbox
from tests.fakes.anthropic import FakeAnthropic

LIBRARY = Path(__file__).parents[3] / "skills" / "library"
MODEL = "claude-sonnet-4-6"
SHIPPED = ["pii-redact@1.0.0", "refund-policy@1.0.0", "summarize-ticket@1.0.0"]


class ShellSandbox:
    """Test-only sandbox: runs the command with /bin/sh in the skill folder (no isolation)."""

    name = "test-shell"

    def __init__(self) -> None:
        self.requests: list[SandboxRequest] = []

    async def run(self, request: SandboxRequest, workspace: Path) -> SandboxResult:
        self.requests.append(request)
        assert isinstance(request.command, str)
        cwd = request.readonly_dir if request.cwd_skill else str(workspace)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_shell(
            request.command,
            cwd=cwd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", **request.env},
        )
        out, err = await asyncio.wait_for(
            proc.communicate((request.stdin or "").encode()), timeout=request.limits.wall_seconds
        )
        return SandboxResult(
            exit_code=proc.returncode or 0,
            stdout=out.decode(),
            stderr=err.decode(),
            duration_ms=(time.monotonic() - started) * 1000,
        )


@pytest.fixture(scope="module")
def registry() -> SkillRegistry:
    return SkillRegistry.load(LIBRARY)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    shutil.copytree(LIBRARY, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


# ------------------------------------------------------------------ loading and lookups


def test_shipped_library_loads_and_every_version_is_published(registry: SkillRegistry) -> None:
    assert [s.ref for s in registry.list()] == SHIPPED
    assert all(s.published for s in registry.list())
    assert all(len(s.fixtures) >= 2 for s in registry.list())
    lock = json.loads((LIBRARY / LOCK_FILE).read_text())
    assert lock == {s.ref: s.content_hash for s in registry.list()}


def test_pinned_lookup(registry: SkillRegistry) -> None:
    skill = registry.get("refund-policy@1.0.0")

    assert skill.spec.name == "refund-policy"
    assert skill.path == LIBRARY / "refund-policy" / "1.0.0"
    assert skill.sop.startswith("# Refund policy")
    assert registry.versions("refund-policy") == ["1.0.0"]


@pytest.mark.parametrize(
    "ref", ["refund-policy", "refund-policy@latest", "refund-policy@1", "refund-policy@"]
)
def test_unpinned_refs_are_refused_with_the_versions_that_exist(registry: SkillRegistry, ref: str) -> None:
    with pytest.raises(InvalidInput, match=r"not pinned.*versions: 1\.0\.0") as caught:
        registry.get(ref)
    assert "skill" in caught.value.errors


def test_unknown_version_lists_the_versions(registry: SkillRegistry) -> None:
    with pytest.raises(NotFound, match=r"refund-policy has no version 9\.9\.9 \(versions: 1\.0\.0\)"):
        registry.get("refund-policy@9.9.9")


def test_unknown_skill_lists_known_skills(registry: SkillRegistry) -> None:
    with pytest.raises(NotFound, match=r"unknown skill 'refund'.*refund-policy"):
        registry.get("refund@1.0.0")


def test_content_hash_ignores_pycache_but_not_content(library: Path) -> None:
    folder = library / "refund-policy" / "1.0.0"
    before = content_hash(folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "refund_policy.cpython-311.pyc").write_bytes(b"\0compiled")
    assert content_hash(folder) == before

    (folder / "notes.txt").write_text("x")
    assert content_hash(folder) != before


# ------------------------------------------------------------------ immutability and publishing


def test_editing_a_published_version_is_refused(library: Path) -> None:
    script = library / "refund-policy" / "1.0.0" / "refund_policy.py"
    script.write_text(script.read_text().replace("HARD_LIMIT = 5000.0", "HARD_LIMIT = 50000.0"))

    with pytest.raises(InvalidWorkflow) as caught:
        SkillRegistry.load(library)

    message = str(caught.value)
    assert "skill refund-policy@1.0.0 changed after it was published (hash sha256:" in message
    assert "publish a new version instead" in message
    assert len(caught.value.issues) == 1


def test_deleting_a_published_version_is_refused(library: Path) -> None:
    shutil.rmtree(library / "pii-redact")

    with pytest.raises(InvalidWorkflow, match=r"pii-redact@1\.0\.0 is published but its folder is missing"):
        SkillRegistry.load(library)


def test_a_new_version_loads_unpublished_and_publish_records_it(library: Path) -> None:
    new = library / "refund-policy" / "1.1.0"
    shutil.copytree(library / "refund-policy" / "1.0.0", new)
    spec = new / "skill.yml"
    spec.write_text(spec.read_text().replace("version: 1.0.0", "version: 1.1.0"))

    registry = SkillRegistry.load(library)
    assert registry.versions("refund-policy") == ["1.0.0", "1.1.0"]
    assert registry.get("refund-policy@1.1.0").published is False

    published = registry.publish("refund-policy@1.1.0")

    assert published.published
    lock = json.loads((library / LOCK_FILE).read_text())
    assert lock["refund-policy@1.1.0"] == content_hash(new)
    assert SkillRegistry.load(library).get("refund-policy@1.1.0").published
    assert registry.publish("refund-policy@1.1.0") == published


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("version: 1.0.0", "version: 1.0", "version"),
        ("version: 1.0.0", "version: 2.0.0", "version"),
        ("  command: python3 refund_policy.py", "  script: refund_policy.py", "runtime"),
        ("outputs:\n", "outputs_typo:\n", "outputs_typo"),
        ("    customer_tier: {type: string", "    customer_tier: {type: strng", "inputs"),
    ],
)
def test_bad_skill_yml_names_the_file_field_and_line(library: Path, old: str, new: str, field: str) -> None:
    spec = library / "refund-policy" / "1.0.0" / "skill.yml"
    new_dir = library / "refund-policy" / "1.0.1"
    shutil.copytree(spec.parent, new_dir)
    text = (new_dir / "skill.yml").read_text().replace("version: 1.0.0", "version: 1.0.1")
    (new_dir / "skill.yml").write_text(text.replace(old.replace("1.0.0", "1.0.1"), new))

    with pytest.raises(InvalidWorkflow) as caught:
        SkillRegistry.load(library)

    issue = next(i for i in caught.value.issues if (i.field or "").startswith(field))
    assert issue.file == str(new_dir / "skill.yml")
    assert issue.line is not None


def test_fixture_with_invalid_input_is_reported_at_load(library: Path) -> None:
    new_dir = library / "pii-redact" / "1.0.1"
    shutil.copytree(library / "pii-redact" / "1.0.0", new_dir)
    spec = new_dir / "skill.yml"
    spec.write_text(spec.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    (new_dir / "fixtures" / "bad.yml").write_text("input: {txt: hello}\nexpect: {}\n")

    with pytest.raises(InvalidWorkflow) as caught:
        SkillRegistry.load(library)

    fields = {i.field for i in caught.value.issues}
    assert fields == {"input.text", "input.txt"}


# ------------------------------------------------------------------ running


@pytest.mark.parametrize("sandbox", [ShellSandbox(), SubprocessSandbox()], ids=["shell", "subprocess"])
async def test_command_skill_fixtures_pass(registry: SkillRegistry, tmp_path: Path, sandbox: Sandbox) -> None:
    for ref in ("refund-policy@1.0.0", "pii-redact@1.0.0"):
        skill = registry.get(ref)
        results = await test_skill(skill, sandbox=sandbox, llm=None, workspace=tmp_path / ref, model=MODEL)

        assert [r.fixture for r in results] == [f.name for f in skill.fixtures]
        assert all(r.passed for r in results), [r for r in results if not r.passed]


async def test_command_skill_runs_read_only_in_its_folder(registry: SkillRegistry, tmp_path: Path) -> None:
    sandbox = ShellSandbox()
    skill = registry.get("refund-policy@1.0.0")

    await run_skill(
        skill,
        {"amount": 10, "customer_tier": "gold", "reason": "late"},
        sandbox=sandbox,
        llm=None,
        workspace=tmp_path,
        model=MODEL,
    )

    request = sandbox.requests[0]
    assert (request.readonly_dir, request.cwd_skill) == (str(skill.path), True)
    assert json.loads(request.stdin or "") == {"amount": 10, "customer_tier": "gold", "reason": "late"}


async def test_run_skill_validates_inputs_first(registry: SkillRegistry, tmp_path: Path) -> None:
    sandbox = ShellSandbox()
    with pytest.raises(InvalidInput) as caught:
        await run_skill(
            registry.get("refund-policy@1.0.0"),
            {"amount": -5, "customer_tier": "diamond"},
            sandbox=sandbox,
            llm=None,
            workspace=tmp_path,
            model=MODEL,
        )

    assert set(caught.value.errors) == {"amount", "customer_tier", "reason"}
    assert sandbox.requests == []


async def test_output_that_breaks_the_schema_names_the_field(library: Path, tmp_path: Path) -> None:
    new_dir = library / "refund-policy" / "2.0.0"
    shutil.copytree(library / "refund-policy" / "1.0.0", new_dir)
    spec = new_dir / "skill.yml"
    spec.write_text(spec.read_text().replace("version: 1.0.0", "version: 2.0.0"))
    script = new_dir / "refund_policy.py"
    script.write_text(script.read_text().replace('"risk": risk', '"risk": "unknown"'))
    skill = SkillRegistry.load(library).get("refund-policy@2.0.0")

    with pytest.raises(SkillFailed, match="output does not match its schema: risk:") as caught:
        await run_skill(
            skill,
            {"amount": 10, "customer_tier": "gold", "reason": "broken"},
            sandbox=ShellSandbox(),
            llm=None,
            workspace=tmp_path,
            model=MODEL,
        )
    assert caught.value.retryable is False


async def test_failing_command_reports_exit_code_and_stderr(registry: SkillRegistry, tmp_path: Path) -> None:
    class Crashing(ShellSandbox):
        async def run(self, request: SandboxRequest, workspace: Path) -> SandboxResult:
            return SandboxResult(exit_code=1, stdout="", stderr="Traceback: boom")

    with pytest.raises(SkillFailed, match="exited with code 1: Traceback: boom"):
        await run_skill(
            registry.get("pii-redact@1.0.0"),
            {"text": "hi"},
            sandbox=Crashing(),
            llm=None,
            workspace=tmp_path,
            model=MODEL,
        )


async def test_prompt_skill_fixtures_pass_through_the_llm(
    registry: SkillRegistry, fake: FakeAnthropic, tmp_path: Path
) -> None:
    skill = registry.get("summarize-ticket@1.0.0")
    for fixture in skill.fixtures:
        fake.reply_tool({"summary": "A short summary.", **fixture.expect})

    async with AnthropicLLM(api_key="sk-test", base_url=fake.base_url) as llm:
        results = await test_skill(skill, sandbox=ShellSandbox(), llm=llm, workspace=tmp_path, model=MODEL)

    assert all(r.passed for r in results), results
    first = fake.requests[0]
    assert first["system"] == skill.sop
    assert first["tools"][0]["input_schema"] == skill.spec.outputs
    prompt = first["messages"][0]["content"]
    assert skill.fixtures[0].input["ticket"] in prompt
    assert "{{" not in prompt


async def test_fixture_mismatch_is_reported(
    registry: SkillRegistry, fake: FakeAnthropic, tmp_path: Path
) -> None:
    skill = registry.get("summarize-ticket@1.0.0")
    fake.reply_tool({"summary": "Fine.", "sentiment": "positive", "urgency": "low"})

    async with AnthropicLLM(api_key="sk-test", base_url=fake.base_url) as llm:
        results = await test_skill(skill, sandbox=ShellSandbox(), llm=llm, workspace=tmp_path, model=MODEL)

    failed = results[1]  # outage-angry sorts after feature-question
    assert not failed.passed
    assert failed.mismatches["sentiment"] == "expected 'negative', got 'positive'"


async def test_prompt_skill_without_llm_fails_clearly(registry: SkillRegistry, tmp_path: Path) -> None:
    with pytest.raises(SkillFailed, match="needs an LLM"):
        await run_skill(
            registry.get("summarize-ticket@1.0.0"),
            {"ticket": "hello"},
            sandbox=ShellSandbox(),
            llm=None,
            workspace=tmp_path,
            model=MODEL,
        )


async def test_registry_runner_runs_published_skills_with_the_idempotency_key(
    registry: SkillRegistry, tmp_path: Path
) -> None:
    sandbox = ShellSandbox()
    runner = RegistryRunner(registry, sandbox=sandbox, llm=None, model=MODEL)

    assert runner.exists("pii-redact@1.0.0") is None
    assert "not pinned" in (runner.exists("pii-redact") or "")
    output = await runner.run(
        "pii-redact@1.0.0", {"text": "mail a@b.io"}, workspace=tmp_path, key="run_1:n:1"
    )

    assert output["text"] == "mail [EMAIL]"
    assert sandbox.requests[0].env == {"SIGNOFF_IDEMPOTENCY_KEY": "run_1:n:1"}
