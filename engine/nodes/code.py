"""``code``: run a command in the sandbox; stdout becomes text (and data when it is JSON).

Each step runs in its own workspace, ``<workspace_root>/<run_id>/<node_id>``. Files the command
creates or changes there are the step's artifacts, reported in ``Deliverable.files`` as paths
relative to the run's workspace (``<node_id>/<file>``), so they stay valid when the workspace
root moves and never reveal host paths. A later code node copies artifacts into its own
workspace with ``artifacts: ["{{ nodes.report.files }}"]``; each keeps the same relative path.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from engine.errors import SkillFailed
from engine.model import Deliverable, NodeSpec, parse_duration
from engine.nodes.base import Completed, LoadContext, NodeContext, NodeResult
from engine.ports import SandboxLimits, SandboxRequest, SandboxResult
from engine.templates import has_template, render_value
from engine.workspace import copy_beneath, relative_parts

__all__ = [
    "IDEMPOTENCY_ENV",
    "CodeConfig",
    "CodeNode",
    "LimitsSpec",
    "parse_size",
    "remove_run_workspace",
    "step_workspace",
]

IDEMPOTENCY_ENV = "SIGNOFF_IDEMPOTENCY_KEY"
DEFAULT_TIMEOUT_S = 30.0
_STDERR_TAIL = 500
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|K|M|G)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NO_SANDBOX = (
    "no sandbox is configured, so code nodes cannot run: install bubblewrap, or set "
    "SIGNOFF_SANDBOX=docker with SIGNOFF_DOCKER_IMAGE"
)


def parse_size(value: str | int) -> int:
    """Bytes in ``256MB``, ``512KB``, ``1GB`` or a plain number (units are powers of 1024).

    Raises:
        ValueError: not a positive size.
    """
    match = _SIZE.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"bad size {value!r}: use a number with a unit, like 256MB, 512KB or 1GB")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])


def step_workspace(root: Path, run_id: str, node_id: str) -> Path:
    """The host directory of one step: ``<root>/<run_id>/<node_id>``."""
    return root / run_id / node_id


async def remove_run_workspace(root: Path | None, run_id: str) -> None:
    """Delete ``<root>/<run_id>`` and everything in it (a run that ended needs no artifacts)."""
    if root is None or not run_id or "/" in run_id or run_id in {".", ".."}:
        return
    await asyncio.to_thread(shutil.rmtree, root / run_id, True)


class LimitsSpec(BaseModel):
    """``limits``: memory and output as sizes, cpu as a duration, processes as a count."""

    model_config = ConfigDict(extra="forbid")

    memory: str | int | None = None
    cpu: str | float | None = None
    processes: int | None = Field(default=None, ge=1, le=4096)
    output: str | int | None = None
    workspace: str | int | None = None


class CodeConfig(BaseModel):
    """The configuration of a ``code`` node (architecture.md §4)."""

    model_config = ConfigDict(extra="forbid")

    run: str | list[str]
    stdin: Any = None
    files: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[str] | str = Field(default_factory=list)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)


class CodeNode:
    """A command in the sandbox, with the step's idempotency key in its environment."""

    type_name: ClassVar[str] = "code"
    config_model: ClassVar[type[BaseModel]] = CodeConfig
    template_fields: ClassVar[tuple[str, ...]] = ("run", "stdin", "files", "env", "artifacts")
    side_effects: ClassVar[bool] = True

    @classmethod
    def check(cls, node: NodeSpec, ctx: LoadContext) -> list[tuple[str | None, str]]:
        """Command shape, file and variable names, and limit values."""
        config = node.config
        assert isinstance(config, CodeConfig)
        problems: list[tuple[str | None, str]] = []
        if isinstance(config.run, str):
            if not config.run.strip():
                problems.append(("run", "run needs a command"))
            elif has_template(config.run):
                # a shell would interpret quotes and ';' inside the values
                problems.append(("run", "a run string cannot hold templates; use an argv list instead"))
        elif not config.run:
            problems.append(("run", "run needs at least the program to start"))
        for name in config.files:
            if not _safe_name(name):
                problems.append(("files", f"file name {name!r} must be a relative path inside the workspace"))
        for path in _literal_artifacts(config.artifacts):
            try:
                relative_parts(path, "artifact")
            except SkillFailed as exc:
                problems.append(("artifacts", str(exc)))
        for name in config.env:
            if not _ENV_NAME.match(name):
                problems.append(("env", f"{name!r} is not a valid environment variable name"))
        try:
            _limits(config.limits, DEFAULT_TIMEOUT_S)
        except ValueError as exc:
            problems.append(("limits", str(exc)))
        return problems

    @classmethod
    async def execute(cls, ctx: NodeContext) -> NodeResult:
        """Prepare the workspace, run the command, and turn its output into a deliverable."""
        config = ctx.node.config
        assert isinstance(config, CodeConfig)
        sandbox = ctx.deps.sandbox
        if sandbox is None:
            raise SkillFailed(NO_SANDBOX)
        if ctx.deps.workspace_root is None:
            raise SkillFailed("no workspace directory is configured for code nodes (SIGNOFF_WORKSPACE_DIR)")
        run_ws = ctx.deps.workspace_root / ctx.run.id
        workspace = step_workspace(ctx.deps.workspace_root, ctx.run.id, ctx.node.id)
        timeout = ctx.node.timeout.total_seconds() if ctx.node.timeout else DEFAULT_TIMEOUT_S
        compiled = ctx.compiled
        copied = _flatten(render_value(compiled.get("artifacts", []), ctx.scope))
        limits = _limits(config.limits, timeout)
        await asyncio.to_thread(_fresh_workspace, workspace, run_ws, copied, limits.max_workspace_bytes)
        request = SandboxRequest(
            command=_command(render_value(compiled["run"], ctx.scope)),
            stdin=None if config.stdin is None else _text(render_value(compiled["stdin"], ctx.scope)),
            env=_env(render_value(compiled.get("env", {}), ctx.scope), ctx.idempotency_key),
            files={name: _text(v) for name, v in render_value(compiled.get("files", {}), ctx.scope).items()},
            limits=limits,
        )
        result = await sandbox.run(request, workspace)
        _check(result, request.limits)
        files = [f"{ctx.node.id}/{rel}" for rel in result.files]
        step_input: dict[str, Any] = {
            "command": request.command,
            "files": sorted(request.files),
            "artifacts": copied,
            "exit_code": result.exit_code,
            "duration_ms": result.duration_ms,
        }
        return Completed(output=_deliverable(result.stdout, files), input=step_input)


def _safe_name(name: str) -> bool:
    rel = PurePosixPath(name)
    return bool(name) and not rel.is_absolute() and ".." not in rel.parts and "\0" not in name


def _limits(spec: LimitsSpec, wall_seconds: float) -> SandboxLimits:
    defaults = SandboxLimits()
    return SandboxLimits(
        wall_seconds=wall_seconds,
        cpu_seconds=(
            parse_duration(spec.cpu).total_seconds() if spec.cpu is not None else defaults.cpu_seconds
        ),
        memory_bytes=parse_size(spec.memory) if spec.memory is not None else defaults.memory_bytes,
        max_processes=spec.processes or defaults.max_processes,
        max_output_bytes=parse_size(spec.output) if spec.output is not None else defaults.max_output_bytes,
        max_workspace_bytes=(
            parse_size(spec.workspace) if spec.workspace is not None else defaults.max_workspace_bytes
        ),
    )


def _text(value: Any) -> str:
    # A single-expression template keeps its type; files and stdin carry objects as JSON.
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _command(value: Any) -> str | list[str]:
    if isinstance(value, list):
        return [_text(v) for v in value]
    return str(value)


def _env(values: Any, key: str) -> dict[str, str]:
    env = {str(k): _text(v) for k, v in (values or {}).items()}
    env[IDEMPOTENCY_ENV] = key  # set last so a workflow cannot forge another step's key
    return env


def _flatten(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [path for item in value for path in _flatten(item)]
    return [str(value)]


def _literal_artifacts(value: list[str] | str) -> list[str]:
    return [
        path for path in ([value] if isinstance(value, str) else value) if path and not has_template(path)
    ]


def _fresh_workspace(
    workspace: Path, run_ws: Path, copied: list[str], budget: int = SandboxLimits().max_workspace_bytes
) -> None:
    # A step that runs again after a crash must not report or read what the lost attempt left.
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    # Earlier steps' workspaces were written by sandboxed code: no link in an artifact's path
    # is followed, and only regular files are copied (engine/workspace.py).
    for rel in copied:
        budget -= copy_beneath(run_ws, rel, workspace, what="artifact", budget=budget)


def _check(result: SandboxResult, limits: SandboxLimits) -> None:
    killed = result.killed or ("output" if result.output_truncated else None)
    if killed is not None or result.timed_out:
        what = {
            "wall_time": f"wall time {limits.wall_seconds:g}s",
            "cpu_time": f"CPU time {limits.cpu_seconds:g}s",
            "memory": f"memory {_human(limits.memory_bytes)}",
            "output": f"output {_human(limits.max_output_bytes)}",
            "workspace": f"workspace size {_human(limits.max_workspace_bytes)}",
        }[killed or "wall_time"]
        # time limits may pass on a less busy host; memory and output limits will not
        raise SkillFailed(f"killed: {what} exceeded", retryable=killed in (None, "wall_time", "cpu_time"))
    if result.exit_code != 0:
        tail = result.stderr.strip()[-_STDERR_TAIL:] or "(no stderr)"
        raise SkillFailed(f"command exited with code {result.exit_code}: {tail}")


def _human(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def _deliverable(stdout: str, files: list[str]) -> Deliverable:
    data: dict[str, Any] = {}
    stripped = stdout.strip()
    if stripped[:1] in ("{", "["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            data = parsed
        elif parsed is not None:
            data = {"value": parsed}
    return Deliverable(text=stdout, data=data, files=files)
