"""Running a skill version: command skills in the sandbox, prompt skills through the LLM."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import EngineError, InvalidInput, SkillFailed
from engine.ports import LLM, LLMRequest, Sandbox, SandboxLimits, SandboxRequest, SandboxResult
from skills._schema import field_errors
from skills._skill_model import CommandRuntime, FixtureResult, PromptRuntime, Skill

if TYPE_CHECKING:
    from skills.registry import SkillRegistry

__all__ = ["RegistryRunner", "run_skill", "test_skill"]

IDEMPOTENCY_ENV = "SIGNOFF_IDEMPOTENCY_KEY"
_STDERR_TAIL = 500
# Prompts are plain text for a model, not HTML; escaping would corrupt them.
_TEMPLATES = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


async def run_skill(
    skill: Skill,
    inputs: dict[str, Any],
    *,
    sandbox: Sandbox,
    llm: LLM | None,
    workspace: Path,
    model: str,
    key: str | None = None,
) -> dict[str, Any]:
    """Run one skill version on ``inputs`` and return its validated outputs.

    Args:
        skill: the version to run (from ``SkillRegistry.get``).
        inputs: checked against the skill's ``inputs`` schema first.
        sandbox: runs command skills, with the skill folder read-only as working directory.
        llm: answers prompt skills; may be None for command skills.
        workspace: the step's directory on the host, handed to the sandbox.
        model: model for prompt skills.
        key: idempotency key, passed to command skills as ``SIGNOFF_IDEMPOTENCY_KEY``.

    Raises:
        InvalidInput: ``inputs`` do not match the schema (``errors`` maps each field).
        SkillFailed: the skill failed, or its output does not match the ``outputs`` schema.
    """
    errors = field_errors(skill.spec.inputs, inputs)
    if errors:
        raise InvalidInput(f"invalid inputs for skill {skill.ref}", errors)
    runtime = skill.spec.runtime
    if isinstance(runtime, CommandRuntime):
        output = await _run_command(skill, runtime, inputs, sandbox, workspace, key)
    else:
        output = await _run_prompt(skill, runtime, inputs, llm, model)
    errors = field_errors(skill.spec.outputs, output)
    if errors:
        detail = "; ".join(f"{field or '(root)'}: {message}" for field, message in errors.items())
        raise SkillFailed(f"skill {skill.ref} output does not match its schema: {detail}", retryable=False)
    return output


async def test_skill(
    skill: Skill, *, sandbox: Sandbox, llm: LLM | None, workspace: Path, model: str
) -> list[FixtureResult]:
    """Run every fixture of ``skill``; each gets its own sub-directory of ``workspace``.

    Returns:
        One result per fixture, in file-name order. A fixture passes when every key of its
        ``expect`` equals the same key of the output.
    """
    results = []
    for fixture in skill.fixtures:
        fixture_ws = workspace / f"fixture-{fixture.name}"
        await asyncio.to_thread(fixture_ws.mkdir, parents=True, exist_ok=True)
        try:
            output = await run_skill(
                skill, fixture.input, sandbox=sandbox, llm=llm, workspace=fixture_ws, model=model
            )
        except EngineError as e:
            results.append(FixtureResult(skill=skill.ref, fixture=fixture.name, passed=False, error=str(e)))
            continue
        mismatches = _mismatches(fixture.expect, output)
        results.append(
            FixtureResult(
                skill=skill.ref,
                fixture=fixture.name,
                passed=not mismatches,
                output=output,
                mismatches=mismatches,
            )
        )
    return results


# Imported by test modules under its own name; this keeps pytest from collecting it as a test.
test_skill.__test__ = False  # type: ignore[attr-defined]


class RegistryRunner:
    """Runs published skills of a registry for the engine's ``skill`` node (its SkillRunner)."""

    def __init__(self, registry: SkillRegistry, *, sandbox: Sandbox, llm: LLM | None, model: str) -> None:
        """Bind the registry to the adapters that skills run on."""
        self._registry = registry
        self._sandbox = sandbox
        self._llm = llm
        self._model = model

    def exists(self, ref: str) -> str | None:
        """None when ``ref`` names a published version that can run here, else what is wrong."""
        try:
            skill = self._registry.get(ref)
        except EngineError as e:
            return str(e)
        if not skill.published:
            return f"skill {ref} is not published; run `signoff skills publish {ref}` first"
        if isinstance(skill.spec.runtime, PromptRuntime) and self._llm is None:
            return f"skill {ref} is a prompt skill and needs a language model: set ANTHROPIC_API_KEY"
        return None

    async def run(
        self, ref: str, inputs: dict[str, Any], *, workspace: Path, key: str, llm: LLM | None = None
    ) -> dict[str, Any]:
        """Run the pinned skill; see ``run_skill``. ``llm`` replaces the runner's for this call."""
        skill = self._registry.get(ref)
        return await run_skill(
            skill,
            inputs,
            sandbox=self._sandbox,
            llm=llm if llm is not None else self._llm,
            workspace=workspace,
            model=self._model,
            key=key,
        )


async def _run_command(
    skill: Skill,
    runtime: CommandRuntime,
    inputs: dict[str, Any],
    sandbox: Sandbox,
    workspace: Path,
    key: str | None,
) -> dict[str, Any]:
    request = SandboxRequest(
        command=runtime.command,
        stdin=json.dumps(inputs),
        env={IDEMPOTENCY_ENV: key} if key else {},
        readonly_dir=str(skill.path),
        cwd_skill=True,
        limits=SandboxLimits(wall_seconds=runtime.timeout_s),
    )
    result = await sandbox.run(request, workspace)
    _check_exit(skill, runtime, result)
    try:
        output = json.loads(result.stdout)
    except ValueError as e:
        raise SkillFailed(f"skill {skill.ref} did not print JSON on stdout: {e}", retryable=False) from e
    if not isinstance(output, dict):
        raise SkillFailed(f"skill {skill.ref} printed JSON that is not an object", retryable=False)
    return output


def _check_exit(skill: Skill, runtime: CommandRuntime, result: SandboxResult) -> None:
    if result.timed_out or result.killed in ("wall_time", "cpu_time"):
        # A busy host can make a healthy skill time out; trying again may help.
        raise SkillFailed(f"skill {skill.ref} timed out (limit {runtime.timeout_s:g}s)", retryable=True)
    if result.killed is not None:
        raise SkillFailed(f"skill {skill.ref} was stopped at its {result.killed} limit", retryable=False)
    if result.exit_code != 0:
        tail = result.stderr.strip()[-_STDERR_TAIL:]
        raise SkillFailed(f"skill {skill.ref} exited with code {result.exit_code}: {tail}", retryable=False)
    if result.output_truncated:
        raise SkillFailed(f"skill {skill.ref} printed more than its output limit", retryable=False)


async def _run_prompt(
    skill: Skill, runtime: PromptRuntime, inputs: dict[str, Any], llm: LLM | None, model: str
) -> dict[str, Any]:
    if llm is None:
        raise SkillFailed(f"skill {skill.ref} needs an LLM and none is configured", retryable=False)
    try:
        prompt = _TEMPLATES.from_string(runtime.prompt).render(inputs=inputs)
    except TemplateError as e:
        raise SkillFailed(f"skill {skill.ref} prompt template: {e.message}", retryable=False) from e
    request = LLMRequest(
        model=model,
        system=skill.sop,
        prompt=prompt,
        output_schema=skill.spec.outputs,
        max_tokens=runtime.max_tokens,
    )
    response = await llm.complete(request)
    if response.data is None:
        raise SkillFailed(f"skill {skill.ref}: the model returned no structured output", retryable=False)
    return response.data


def _mismatches(expect: dict[str, Any], output: dict[str, Any]) -> dict[str, str]:
    mismatches = {}
    for field, expected in expect.items():
        if field not in output:
            mismatches[field] = f"expected {expected!r}, missing from the output"
        elif output[field] != expected:
            mismatches[field] = f"expected {expected!r}, got {output[field]!r}"
    return mismatches
