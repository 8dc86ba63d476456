"""An ask: a checkpoint opened without a workflow file, as a run of a generated one-node workflow.

The ask's *structural* fields (who decides, quorum, options, response schema, deadline,
reminders, escalation, priority, confirmation word) become a literal workflow, validated by the
normal loader (so a bad assignee, role or duration is refused naming the field) and published
by content hash like any version. Its *content* (prompt, title, ``show``, proposed values) is
data an agent wrote: it is passed as the run's inputs and referenced by single expressions,
never compiled as a template. Template syntax in a structural field is refused.

The run then lives in the same tables as any other: the same card, App Home, console, CLI,
timers, escalation, audit and decision gate. It ends when the checkpoint resolves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.agents import names_requester
from engine.errors import InvalidInput, InvalidWorkflow
from engine.loader import load_workflow_text
from engine.model import Priority, Workflow
from engine.roles import Role
from engine.templates import has_template

__all__ = ["ASK_NODE", "ASK_WORKFLOW", "STRUCTURAL_FIELDS", "Ask", "ask_inputs", "ask_workflow"]

ASK_WORKFLOW = "api-ask"
"""The workflow id of every ask (each distinct structure is its own version)."""
ASK_NODE = "ask"
STRUCTURAL_FIELDS = (
    "kind",
    "options",
    "response_schema",
    "assignee",
    "notify",
    "quorum",
    "timeout",
    "reminders",
    "escalation",
    "priority",
    "confirm",
    "allow_self_approval",
)
_INPUTS = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string"},
        "title": {"type": "string"},
        "show": {"type": "object"},
        "proposed": {"type": "object"},
    },
    "required": ["prompt", "title", "show", "proposed"],
    "additionalProperties": False,
}
_TITLE_LENGTH = 80

Assignee = str | dict[str, Any] | list[str | dict[str, Any]]


class Ask(BaseModel):
    """What an agent asks a person: the content shown, and the rules of the checkpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1, max_length=10_000, description="The question, shown as is.")
    title: str | None = Field(
        default=None, max_length=200, description="Short title; defaults to the prompt's first line."
    )
    show: dict[str, Any] = Field(
        default_factory=dict, description="Labelled values the person sees (rendered and hashed)."
    )
    proposed: dict[str, Any] = Field(
        default_factory=dict, description="The values Approve passes on (editable with Edit)."
    )
    response_schema: dict[str, Any] = Field(
        default_factory=dict, description="JSON Schema of the data an answer or edit must fit."
    )
    kind: Literal["approval", "input", "review"] = "approval"
    options: list[Literal["approve", "reject", "edit"]] | None = Field(
        default=None,
        description="Offered actions; default approve and reject, plus edit when the schema has fields.",
    )
    assignee: Assignee = Field(
        description="Who decides: user:U123, group:S123, role:name, channel:C123, a list, or a pool "
        "({strategy: round_robin | least_busy, pool: [...]})."
    )
    notify: list[str] = Field(default_factory=list, description="Who is told without deciding.")
    quorum: int = Field(default=1, ge=1, le=50, description="Distinct approvals needed.")
    timeout: str | None = Field(default=None, description="Deadline, like 30m, 4h or 2d.")
    reminders: list[str] = Field(default_factory=list, description="Reminders before the timeout.")
    escalation: str | dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None, description="What the deadline does (default: the ask times out)."
    )
    priority: Priority = Priority.medium
    confirm: str | None = Field(default=None, description="A word the person must type to approve.")
    allow_self_approval: bool = False


def _templated(value: Any) -> bool:
    if isinstance(value, str):
        return has_template(value)
    if isinstance(value, dict):
        return any(_templated(k) or _templated(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False


def _node(ask: Ask) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": ASK_NODE,
        "type": "human",
        "kind": ask.kind,
        "title": "{{ inputs.title }}",
        "prompt": "{{ inputs.prompt }}",
        "context": "{{ inputs.show }}",
        "proposed": "{{ inputs.proposed }}",
        "assignee": ask.assignee,
        "quorum": ask.quorum,
        "priority": ask.priority.value,
        "allow_self_approval": ask.allow_self_approval,
    }
    if ask.kind != "input":
        editable = bool(ask.response_schema.get("properties"))
        node["options"] = ask.options or (
            ["approve", "reject", "edit"] if editable else ["approve", "reject"]
        )
    optional = {
        "response_schema": ask.response_schema or None,
        "notify": ask.notify or None,
        "timeout": ask.timeout,
        "reminders": ask.reminders or None,
        "escalation": ask.escalation,
        "confirm": ask.confirm,
    }
    node.update({k: v for k, v in optional.items() if v is not None})
    return node


def ask_workflow(ask: Ask, roles: Mapping[str, Role]) -> Workflow:
    """The validated one-node workflow of ``ask`` (the same structure gives the same version).

    Raises:
        InvalidInput: a structural field is invalid (template syntax, an unknown role, a bad
            duration...); ``errors`` names each field as the request does.
    """
    templated = {f: "template syntax ({{ or {%) is not allowed here" for f in STRUCTURAL_FIELDS}
    errors = {f: m for f, m in templated.items() if _templated(getattr(ask, f))}
    for name in ("assignee", "notify", "escalation"):
        if name not in errors and names_requester(getattr(ask, name)):
            errors[name] = "'requester' names nobody in an ask: name the people, roles or channels"
    if errors:
        raise InvalidInput("the ask has invalid fields", errors)
    source = json.dumps(
        {
            "id": ASK_WORKFLOW,
            "title": "Ask from an agent",
            "inputs": _INPUTS,
            "nodes": [_node(ask)],
            "edges": [],
        },
        ensure_ascii=False,
        sort_keys=True,
        indent=1,
    )
    try:
        return load_workflow_text(source, file=ASK_WORKFLOW, roles=roles)
    except InvalidWorkflow as exc:
        found: dict[str, str] = {}
        for issue in exc.issues:
            name = (issue.field or "").split(".")[0]
            found.setdefault(name, issue.message)
        raise InvalidInput("the ask has invalid fields", found) from None


def ask_inputs(ask: Ask) -> dict[str, Any]:
    """The run's inputs: the content the person is shown, as data."""
    first = ask.prompt.strip().splitlines()[0] if ask.prompt.strip() else ask.prompt
    title = ask.title or (first if len(first) <= _TITLE_LENGTH else first[: _TITLE_LENGTH - 1] + "…")
    return {"prompt": ask.prompt, "title": title, "show": dict(ask.show), "proposed": dict(ask.proposed)}
