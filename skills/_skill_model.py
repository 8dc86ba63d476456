"""What a skill version is on disk: ``skill.yml``, ``SOP.md``, scripts and ``fixtures/*.yml``."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator

from engine.errors import WorkflowIssue
from skills._schema import field_errors, schema_problem

__all__ = [
    "CommandRuntime",
    "Fixture",
    "FixtureResult",
    "PromptRuntime",
    "Skill",
    "SkillSpec",
    "content_hash",
    "parse_skill",
    "version_key",
]

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
SPEC_FILE = "skill.yml"
SOP_FILE = "SOP.md"
_IGNORED_DIRS = frozenset({"__pycache__"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CommandRuntime(_Model):
    """Run ``command`` in the sandbox with the skill folder as working directory."""

    command: str = Field(min_length=1)
    timeout_s: float = Field(default=30.0, gt=0, le=600)


class PromptRuntime(_Model):
    """Render ``prompt`` with the inputs and ask the LLM, with SOP.md as the system prompt."""

    prompt: str = Field(min_length=1)
    max_tokens: int = Field(default=1024, gt=0, le=8192)


def _runtime_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "command" if "command" in value else "prompt" if "prompt" in value else None
    return (
        "command"
        if isinstance(value, CommandRuntime)
        else "prompt"
        if isinstance(value, PromptRuntime)
        else None
    )


Runtime = Annotated[
    Annotated[CommandRuntime, Tag("command")] | Annotated[PromptRuntime, Tag("prompt")],
    Discriminator(
        _runtime_kind,
        custom_error_type="runtime_kind",
        custom_error_message="needs either command or prompt",
    ),
]


class SkillSpec(_Model):
    """The contents of ``skill.yml``."""

    name: str
    version: str
    description: str = Field(min_length=1)
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    runtime: Runtime

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must be lowercase words joined by '-', like refund-policy")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not VERSION_RE.match(value):
            raise ValueError("must be a semantic version like 1.2.0")
        return value

    @field_validator("inputs", "outputs")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = schema_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class Fixture(_Model):
    """One example: run the skill on ``input``; every key of ``expect`` must equal the output's."""

    name: str
    input: dict[str, Any]
    expect: dict[str, Any]


class FixtureResult(_Model):
    """The outcome of one fixture."""

    skill: str
    fixture: str
    passed: bool
    output: dict[str, Any] | None = None
    mismatches: dict[str, str] = Field(default_factory=dict)
    error: str | None = None


class Skill(_Model):
    """One loaded skill version."""

    spec: SkillSpec
    path: Path
    sop: str
    fixtures: tuple[Fixture, ...] = ()
    content_hash: str
    published: bool = False

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.spec.name}@{self.spec.version}"


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a semantic version."""
    return tuple(int(part) for part in version.split("."))


def content_hash(folder: Path) -> str:
    """``sha256:`` over the sorted relative paths and bytes of every file, minus ``__pycache__``."""
    digest = hashlib.sha256()
    for rel, path in sorted(_files(folder)):
        data = path.read_bytes()
        # Length-prefixed so that moving bytes between a name and a body changes the hash.
        digest.update(f"{len(rel)}:{rel}{len(data)}:".encode())
        digest.update(data)
    return f"sha256:{digest.hexdigest()}"


def _files(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if _IGNORED_DIRS.intersection(rel.parts) or path.is_dir():
            continue
        found.append((rel.as_posix(), path))
    return found


def parse_skill(folder: Path, *, name: str, version: str) -> Skill | list[WorkflowIssue]:
    """Read and check one version folder; return the skill or every problem found."""
    spec_path = folder / SPEC_FILE
    issues = [
        WorkflowIssue("symbolic links are not allowed in a skill", file=str(p)) for p in _symlinks(folder)
    ]
    raw, lines = _read_yaml(spec_path, issues)
    if raw is None:
        return issues
    try:
        spec = SkillSpec.model_validate(raw)
    except ValidationError as e:
        for err in e.errors():
            loc = [str(p) for p in err["loc"]]
            if loc[:1] == ["runtime"] and len(loc) > 2:
                del loc[1]  # the union tag, not a field the author wrote
            top = loc[0] if loc else None
            field = ".".join(loc)
            issues.append(
                WorkflowIssue(_msg(err["msg"]), file=str(spec_path), line=lines.get(top or ""), field=field)
            )
        return issues
    for key, expected in (("name", name), ("version", version)):
        if getattr(spec, key) != expected:
            issues.append(
                WorkflowIssue(
                    f"is {getattr(spec, key)!r} but the folder says {expected!r}",
                    file=str(spec_path),
                    line=lines.get(key),
                    field=key,
                )
            )
    if isinstance(spec.runtime, PromptRuntime):
        _check_template(spec.runtime.prompt, spec_path, lines.get("runtime"), issues)
    sop_path = folder / SOP_FILE
    if not sop_path.is_file():
        issues.append(WorkflowIssue("SOP.md is missing", file=str(sop_path)))
    fixtures = _fixtures(folder, spec, issues)
    if issues:
        return issues
    return Skill(
        spec=spec,
        path=folder,
        sop=sop_path.read_text(encoding="utf-8"),
        fixtures=tuple(fixtures),
        content_hash=content_hash(folder),
    )


def _symlinks(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_symlink()]


def _read_yaml(path: Path, issues: list[WorkflowIssue]) -> tuple[Any, dict[str, int]]:
    if not path.is_file():
        issues.append(WorkflowIssue(f"{path.name} is missing", file=str(path)))
        return None, {}
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        issues.append(WorkflowIssue(f"invalid YAML: {getattr(e, 'problem', e)}", file=str(path), line=line))
        return None, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        issues.append(WorkflowIssue("must be a mapping", file=str(path), line=1))
        return None, {}
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return data, lines


def _check_template(prompt: str, path: Path, line: int | None, issues: list[WorkflowIssue]) -> None:
    try:
        SandboxedEnvironment().parse(prompt)
    except TemplateSyntaxError as e:
        issues.append(
            WorkflowIssue(f"template error: {e.message}", file=str(path), line=line, field="runtime")
        )


def _fixtures(folder: Path, spec: SkillSpec, issues: list[WorkflowIssue]) -> list[Fixture]:
    fixtures = []
    for path in sorted((folder / "fixtures").glob("*.yml")):
        raw, lines = _read_yaml(path, issues)
        if raw is None:
            continue
        try:
            fixture = Fixture.model_validate({"name": path.stem, **raw})
        except ValidationError as e:
            for err in e.errors():
                top = str(err["loc"][0]) if err["loc"] else None
                issues.append(
                    WorkflowIssue(_msg(err["msg"]), file=str(path), line=lines.get(top or ""), field=top)
                )
            continue
        # A fixture whose input the skill would refuse tests nothing; catch it at load time.
        for field, message in field_errors(spec.inputs, fixture.input).items():
            issues.append(
                WorkflowIssue(
                    message, file=str(path), line=lines.get("input"), field=f"input.{field}".rstrip(".")
                )
            )
        fixtures.append(fixture)
    return fixtures


def _msg(message: str) -> str:
    return message.removeprefix("Value error, ")
