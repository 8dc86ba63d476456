"""Roles: names for groups of people, from the roles file (role -> members, escalates_to)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.errors import InvalidWorkflow, WorkflowIssue

__all__ = [
    "EMAIL_PRINCIPAL",
    "PEOPLE_KEY",
    "PRINCIPAL",
    "Preference",
    "Role",
    "load_preferences",
    "load_roles",
    "parse_principal",
]

PEOPLE_KEY = "people"
"""The roles file's one reserved key: how each person prefers to be reached (not a role)."""

PRINCIPAL = re.compile(r"^(user|group|role|channel):([A-Za-z0-9_.\-]+)$")
# a person known by an email address (engine.people links it to their other identities)
EMAIL_PRINCIPAL = re.compile(
    r"^(email):([A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)+)$"
)


def parse_principal(value: str) -> tuple[str, str]:
    """Split ``user:U123`` into (``user``, ``U123``); ``email:Ann@Corp.example`` into (``email``,
    ``ann@corp.example``). Raises ValueError with what is accepted."""
    match = PRINCIPAL.match(value.strip()) or EMAIL_PRINCIPAL.match(value.strip())
    if not match:
        raise ValueError(
            f"unknown assignee {value!r}: use user:U123, email:ann@corp.example, group:S123, role:NAME, "
            "channel:C123 or {strategy: round_robin | least_busy, pool: [...]}"
        )
    kind, name = match.group(1), match.group(2)
    return kind, name.lower() if kind == "email" else name


class Role(BaseModel):
    """A role: its members (``user:``, ``email:`` and ``group:`` principals), where it escalates,
    whether it is an admin role, and who may stand in for its members by delegation (``delegates``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    members: list[str] = Field(default_factory=list)
    escalates_to: str | None = None
    admin: bool = False
    delegates: list[str] = Field(default_factory=list)  # may stand in for members, by delegation

    @field_validator("members", "delegates")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        for member in value:
            kind, _ = parse_principal(member)
            if kind not in {"user", "email", "group"}:
                raise ValueError(f"role members must be user:, email: or group:, not {member!r}")
        return value


class Preference(BaseModel):
    """How one person (a ``user:`` or ``email:`` principal under ``people:``) is reached:
    ``prefers`` a channel, and the ``email`` address of a Slack user who has one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefers: Literal["email", "slack"] | None = None
    email: str | None = None

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _, address = parse_principal(f"email:{value}")
        return address


def _preferences(raw: Any, path: Path) -> tuple[dict[str, Preference], list[WorkflowIssue]]:
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [
            WorkflowIssue(
                f"'{PEOPLE_KEY}' must map user:/email: principals to {{prefers: ...}}", file=str(path)
            )
        ]
    out: dict[str, Preference] = {}
    issues: list[WorkflowIssue] = []
    for who, body in raw.items():
        try:
            kind, name = parse_principal(str(who))
        except ValueError as exc:
            issues.append(WorkflowIssue(f"{PEOPLE_KEY} '{who}': {exc}", file=str(path)))
            continue
        if kind not in {"user", "email"}:
            issues.append(
                WorkflowIssue(f"{PEOPLE_KEY} '{who}': people are named by user: or email:", file=str(path))
            )
            continue
        try:
            out[f"{kind}:{name}"] = Preference.model_validate(body or {})
        except ValidationError as exc:
            issues.extend(
                WorkflowIssue(f"{PEOPLE_KEY} '{who}': {e['msg']}", file=str(path)) for e in exc.errors()
            )
    return out, issues


def load_preferences(path: Path) -> dict[str, Preference]:
    """The ``people:`` section of a roles file, by principal (none when the file is missing).

    Raises:
        InvalidWorkflow: naming the file, the person and the problem.
    """
    prefs, issues = _preferences(_read(path).get(PEOPLE_KEY), path)
    if issues:
        raise InvalidWorkflow(issues)
    return prefs


def _read(path: Path) -> dict[Any, Any]:
    if not path.exists():
        return {}
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InvalidWorkflow(
            [WorkflowIssue(f"not valid YAML: {exc}", file=str(path), line=None if line is None else line + 1)]
        ) from exc
    if not isinstance(raw, dict):
        raise InvalidWorkflow(
            [WorkflowIssue("expected a mapping of role name -> {members: [...]}", file=str(path))]
        )
    return raw


def load_roles(path: Path) -> dict[str, Role]:
    """Read a roles file; a missing file means no roles (``people:`` holds preferences, not a role).

    Raises:
        InvalidWorkflow: naming the file, the role and the problem.
    """
    raw = _read(path)
    roles: dict[str, Role] = {}
    _, issues = _preferences(raw.get(PEOPLE_KEY), path)
    for name, body in raw.items():
        if name == PEOPLE_KEY:
            continue
        try:
            roles[str(name)] = Role.model_validate(body or {})
        except ValidationError as exc:
            for err in exc.errors():
                issues.append(WorkflowIssue(f"role '{name}': {err['msg']}", file=str(path)))
    for name, role in roles.items():
        if role.escalates_to and role.escalates_to.removeprefix("role:") not in roles:
            issues.append(
                WorkflowIssue(f"role '{name}' escalates to unknown {role.escalates_to!r}", file=str(path))
            )
    if issues:
        raise InvalidWorkflow(issues)
    return roles
