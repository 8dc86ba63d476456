"""Roles: names for groups of people, from the roles file (role -> members, escalates_to)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.errors import InvalidWorkflow, WorkflowIssue

__all__ = ["EMAIL_PRINCIPAL", "PRINCIPAL", "Role", "load_roles", "parse_principal"]

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


def load_roles(path: Path) -> dict[str, Role]:
    """Read a roles file; a missing file means no roles.

    Raises:
        InvalidWorkflow: naming the file, the role and the problem.
    """
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
    roles: dict[str, Role] = {}
    issues: list[WorkflowIssue] = []
    for name, body in raw.items():
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
