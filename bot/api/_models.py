"""The HTTP API's request and response bodies: the contract, and the source of its OpenAPI document.

Requests forbid unknown fields (a typo is a 400 naming the field, never silently ignored).
Responses are built from stored rows only, never from a request body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from engine.ask import Ask
from engine.events import EventType
from engine.model import Priority

__all__ = [
    "Actor",
    "CheckpointCreate",
    "CheckpointList",
    "CheckpointOut",
    "CheckpointPage",
    "DecisionCreate",
    "DecisionOut",
    "DeliveryList",
    "DeliveryOut",
    "EndpointCreate",
    "EndpointCreated",
    "EndpointList",
    "EndpointOut",
    "FieldError",
    "IdPath",
    "NoBody",
    "Pending",
    "Problem",
    "RunCreate",
    "RunList",
    "RunOut",
    "RunPage",
    "RunResult",
    "VoteRecorded",
    "WaitQuery",
]

_KEY = Field(
    default=None,
    min_length=1,
    max_length=255,
    description="Idempotency key (or the Idempotency-Key header): unique per API key; required.",
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# --------------------------------------------------------------------------- errors


class FieldError(_Out):
    """One invalid field: its dotted path in the request, and what is wrong."""

    field: str
    message: str


class Problem(_Out):
    """An RFC 9457 problem (``application/problem+json``) with a stable ``code``."""

    type: str = Field(description="A URI naming the problem type (about:blank-style).")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable, machine-readable error code (see docs/api.md).")
    errors: list[FieldError] | None = None
    rule: str | None = Field(default=None, description="The decision gate rule that refused.")
    winner: str | None = Field(default=None, description="Who resolved the checkpoint first.")
    version: int | None = Field(default=None, description="The checkpoint's current version.")
    question: str | None = Field(default=None, description="What the reviewer asks (needs_detail).")


# --------------------------------------------------------------------------- decisions


class Actor(_Out):
    """A verified person: from a signed Slack payload, the console, the CLI or a person's key."""

    id: str
    name: str | None = None


class DecisionOut(_Out):
    """How a checkpoint was resolved, built from the stored decision and checkpoint rows."""

    checkpoint_id: str
    outcome: Literal["approved", "edited", "answered", "rejected", "timed_out", "cancelled", "option"]
    action: str | None = Field(description="The action taken: approve, reject, edit, answer or an option.")
    data: dict[str, Any] = Field(description="The validated data the next step receives.")
    comment: str | None
    actor: Actor | None = Field(description="The person; null when a timeout or policy resolved it.")
    resolved_by: Literal["human", "timeout", "policy"]
    rule: str | None = Field(description="The policy rule, when resolved by timeout or policy.")
    channel: str = Field(description="Where it was decided: slack, web, cli, api, scheduler, engine.")
    decided_at: datetime
    shown_hash: str = Field(description="sha256:<hex> of what the person was shown (docs/api.md).")


class DecisionCreate(_In):
    """A decision made over HTTP with a key bound to a person; it goes through the decision gate."""

    action: str = Field(
        min_length=1, max_length=64, description="approve, reject, edit, answer or an option."
    )
    data: dict[str, Any] = Field(default_factory=dict, description="Edited or answered fields.")
    comment: str | None = Field(default=None, max_length=4000)
    confirm: str | None = Field(default=None, max_length=200, description="The confirmation word.")
    version: int | None = Field(
        default=None, ge=0, description="The checkpoint version you decided on (stale ones are refused)."
    )


class VoteRecorded(_Out):
    """A quorum vote (or a quorum edit) was recorded; more approvals are needed."""

    checkpoint_id: str
    status: Literal["open"] = "open"
    approvals: int
    quorum: int
    version: int


# --------------------------------------------------------------------------- checkpoints


class CheckpointCreate(Ask):
    """Ask a person: a checkpoint without a workflow file (the same card, gate, timers and audit)."""

    key: str | None = _KEY
    callback_url: AnyHttpUrl | None = Field(
        default=None, description="Signed webhooks about this checkpoint are POSTed here."
    )


class CheckpointOut(_Out):
    """A checkpoint as stored, with its decision once resolved."""

    id: str
    run_id: str
    status: Literal["open", "resolved"]
    kind: str
    title: str
    prompt: str
    show: dict[str, Any]
    proposed: dict[str, Any]
    response_schema: dict[str, Any]
    options: list[str]
    assignees: list[str]
    quorum: int
    approvals: int
    priority: Priority
    due_at: datetime | None
    created_at: datetime
    version: int
    shown_hash: str
    outcome: (
        Literal["approved", "edited", "answered", "rejected", "timed_out", "cancelled", "option"] | None
    ) = Field(description="How it was resolved (null while open); timed_out when its timeout policy did.")
    decision: DecisionOut | None


class Pending(_Out):
    """No decision yet (202): wait again."""

    checkpoint_id: str
    status: Literal["open"] = "open"
    version: int
    approvals: int


class CheckpointPage(_Out):
    """Checkpoints, newest first; ``next_cursor`` continues the listing."""

    items: list[CheckpointOut]
    next_cursor: str | None


class CheckpointList(_In):
    """Query of ``GET /api/v1/checkpoints``."""

    status: Literal["open", "resolved", "all"] = "open"
    assignee: str | None = Field(
        default=None, max_length=200, description="One principal, exactly: user:U123 (or U123), role:name..."
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=100)


class WaitQuery(_In):
    """How long to hold the request open for a change (a long poll)."""

    wait: int = Field(default=0, ge=0, le=25, description="Seconds to wait, 0 to 25.")


class IdPath(_In):
    """An id in the path."""

    id: str


class NoBody(_In):
    """An empty JSON object (or no body at all)."""

    reason: str | None = Field(default=None, max_length=500)


# --------------------------------------------------------------------------- runs


class RunCreate(_In):
    """Start a workflow from the catalog."""

    workflow: str = Field(min_length=1, max_length=64)
    inputs: dict[str, Any] = Field(default_factory=dict)
    key: str | None = _KEY
    callback_url: AnyHttpUrl | None = Field(
        default=None, description="Signed webhooks about this run are POSTed here."
    )


class RerunIn(_In):
    """What a rerun reuses: the steps before ``from`` (default: the failed node, else the start)."""

    from_node: str | None = Field(default=None, alias="from", max_length=64)
    reask: bool = Field(default=False, description="Ask the people of earlier checkpoints again.")
    latest: bool = Field(default=False, description="The workflow's current version, not the original's.")


class RunOut(_Out):
    """A run as stored."""

    id: str
    workflow_id: str
    workflow_version: str
    status: Literal["queued", "running", "waiting", "succeeded", "rejected", "failed", "cancelled"]
    outcome: (
        Literal["approved", "declined", "edited", "answered", "option", "timed_out", "cancelled"] | None
    ) = Field(
        description="What its checkpoints decided, apart from the technical status: null while "
        "it runs and when no checkpoint was resolved; timed_out when a timeout policy resolved one."
    )
    reason: str | None
    requester: str
    inputs: dict[str, Any]
    open_checkpoints: list[str]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    paused_by: str | None = Field(default=None, description="Who paused it, while it is paused.")
    rerun_of: str | None = Field(default=None, description="The run this one reruns.")


class RunResult(_Out):
    """A finished run: its final state, every node's output data, and its decisions."""

    run: RunOut
    outputs: dict[str, dict[str, Any]]
    decisions: list[DecisionOut]


class RunPage(_Out):
    """Runs, newest first; ``next_cursor`` continues the listing."""

    items: list[RunOut]
    next_cursor: str | None


class RunList(_In):
    """Query of ``GET /api/v1/runs``."""

    status: str | None = Field(default=None, max_length=200, description="Comma-separated statuses.")
    workflow: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=100)


# --------------------------------------------------------------------------- webhooks


class EndpointCreate(_In):
    """Subscribe a URL to events."""

    url: AnyHttpUrl
    events: list[EventType] = Field(min_length=1, max_length=10)
    description: str = Field(default="", max_length=500)


class EndpointOut(_Out):
    """A webhook endpoint (its secret is shown only when created or rotated)."""

    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime


class EndpointCreated(EndpointOut):
    """A new or rotated endpoint, with its signing secret: shown this once."""

    secret: str
    previous_secret_expires_at: datetime | None = None


class EndpointList(_Out):
    """The caller's webhook endpoints."""

    items: list[EndpointOut]


class DeliveryOut(_Out):
    """One webhook message to one receiver; ``id`` is its ``webhook-id``."""

    id: str
    event_type: str
    url: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime


class DeliveryList(_Out):
    """Newest first."""

    items: list[DeliveryOut]
