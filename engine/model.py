"""Domain models: workflow definitions and the persisted state of runs.

Persisted models are frozen pydantic models with ``extra="forbid"``; storage maps rows to and
from them (storage/mapping.py) so that table classes never leave storage/.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "SCHEMA_VERSION",
    "AuditEvent",
    "Checkpoint",
    "CheckpointOutcome",
    "CheckpointStatus",
    "Decision",
    "Delegation",
    "Deliverable",
    "Delivery",
    "DeliveryStatus",
    "Edge",
    "EscalationLevel",
    "HumanConfig",
    "NodeSpec",
    "Priority",
    "ResolvedBy",
    "Run",
    "RunStatus",
    "Step",
    "StepStatus",
    "Workflow",
    "WorkflowPublication",
    "WorkflowVersion",
    "parse_duration",
]

SCHEMA_VERSION = 1

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?:(?!\}\}).)*\}\}\s*$", re.DOTALL)


def parse_duration(value: str | int | float) -> timedelta:
    """Parse ``30s``, ``30m``, ``4h``, ``7d`` (or a number of seconds) into a timedelta.

    Raises:
        ValueError: with a message saying which forms are accepted.
    """
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: use a number with a unit, like 30s, 30m, 4h or 7d")  # noqa: TRY004
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"bad duration {value!r}: must be positive")
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"bad duration {value!r}: use a number with a unit, like 30s, 30m, 4h or 7d")
    try:
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    except OverflowError:
        raise ValueError(f"bad duration {value!r}: longer than any period Signoff can keep") from None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Spec(BaseModel):
    """Workflow-file models: strict about unknown keys, so typos are load-time errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- workflow definitions


class Priority(StrEnum):
    """How urgent a checkpoint is; App Home orders by it (urgent first)."""

    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"


class EscalationLevel(_Spec):
    """One level of an escalation chain."""

    action: Literal["auto_approve", "auto_reject", "escalate", "retry", "queue"]
    to: str | None = None
    timeout: str | None = None
    max_retries: int = Field(default=3, ge=1, le=20)
    final_action: Literal["auto_approve", "auto_reject", "queue"] | None = None


class VerifyConfig(_Spec):
    """Optional LLM check of a human answer (after the ack, never inside Slack's 3 s)."""

    prompt: str
    on_fail: Literal["flag", "ask_again"] = "flag"


class HumanConfig(_Spec):
    """The configuration of a ``human`` node (architecture.md §4)."""

    kind: Literal["approval", "input", "review"] = "approval"
    prompt: str = ""
    title: str | None = None
    # a mapping of labelled values, or one ``{{ expression }}`` that renders to one (an ask's
    # ``show``, passed as an input so that it is never compiled as a template)
    context: dict[str, Any] | str = Field(default_factory=dict)
    options: list[str] = Field(default_factory=lambda: ["approve", "reject", "edit"])
    response_schema: dict[str, Any] = Field(default_factory=dict)
    proposed: dict[str, Any] | str | None = None
    assignee: str | dict[str, Any] | list[str | dict[str, Any]] | None = None
    notify: list[str] = Field(default_factory=list)
    display: dict[str, Any] = Field(default_factory=dict)
    quorum: int = Field(default=1, ge=1, le=50)
    timeout: str | None = None
    reminders: list[str] = Field(default_factory=list)
    escalation: str | dict[str, Any] | list[dict[str, Any]] | None = None
    priority: Priority = Priority.medium
    allow_self_approval: bool = False
    confirm: str | None = None
    when: str | None = None
    verify: VerifyConfig | None = None
    # where people are reached for this checkpoint; empty: every configured channel (bot/mail)
    channels: list[Literal["slack", "email"]] = Field(default_factory=list)

    def levels(self) -> list[dict[str, Any]]:
        """The escalation as a list of levels (a word, one level, or a chain)."""
        escalation = self.escalation
        if escalation is None:
            return []
        if isinstance(escalation, str):
            return [{"action": escalation}]
        if isinstance(escalation, dict):
            return [escalation]
        return list(escalation)

    @field_validator("context")
    @classmethod
    def _single_expression(cls, value: dict[str, Any] | str) -> dict[str, Any] | str:
        if isinstance(value, str) and not _SINGLE_EXPRESSION.match(value):
            raise ValueError("context must be a mapping, or one {{ expression }} that gives a mapping")
        return value

    @field_validator("options")
    @classmethod
    def _normalise_options(cls, value: list[str]) -> list[str]:
        # "modify" is the name other HITL tools use for edit
        out = ["edit" if o == "modify" else o for o in value]
        if len(set(out)) != len(out):
            raise ValueError("options repeat a value")
        return out


class Edge(_Spec):
    """A transition; without ``when`` it always holds."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    when: str | None = None
    line: int | None = Field(default=None, exclude=True)


class NodeSpec(BaseModel):
    """A loaded node: its id, type, source line and the kind-specific config model."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str
    type: str
    line: int | None = None
    title: str | None = None
    config: BaseModel
    retries: int = 0
    timeout: timedelta | None = None


class Workflow(BaseModel):
    """A validated, loaded workflow definition."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str
    title: str
    description: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    nodes: dict[str, NodeSpec]
    edges: list[Edge]
    entry: str
    source: str
    content_hash: str
    path: str = ""
    label: str = ""  # the file's ``version:`` key: an author's name for this version, not its number
    compiled: Any = Field(default=None, exclude=True, repr=False)

    def outgoing(self, node_id: str) -> list[Edge]:
        """Edges leaving ``node_id`` in file order."""
        return [e for e in self.edges if e.source == node_id]


class WorkflowVersion(_Frozen):
    """A published workflow version: the source text pinned by its content hash."""

    workflow_id: str
    content_hash: str
    source: str
    path: str = ""
    created_at: datetime


class WorkflowPublication(_Frozen):
    """One publish of a workflow: version ``version`` (1, 2, 3... per workflow id) serves the
    source pinned by ``content_hash``. A rollback publishes an older source again under a new
    number, so the list of publications is the full history."""

    workflow_id: str
    version: int
    content_hash: str
    label: str = ""  # the file's ``version:`` key, when it has one
    note: str = ""  # how it was published: ``file``, ``publish``, ``rollback to v2``
    actor: str = ""
    published_at: datetime


# --------------------------------------------------------------------------- runtime state


class RunStatus(StrEnum):
    """queued -> running -> waiting -> running -> ... -> a final state."""

    queued = "queued"
    running = "running"
    waiting = "waiting"
    succeeded = "succeeded"
    rejected = "rejected"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def final(self) -> bool:
        """True for succeeded, rejected, failed and cancelled."""
        return self in _FINAL


_FINAL = {RunStatus.succeeded, RunStatus.rejected, RunStatus.failed, RunStatus.cancelled}


class StepStatus(StrEnum):
    """The state of one node execution."""

    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    waiting = "waiting"
    skipped = "skipped"
    cancelled = "cancelled"


class CheckpointStatus(StrEnum):
    """A checkpoint is open until resolved exactly once."""

    open = "open"
    resolved = "resolved"


class CheckpointOutcome(StrEnum):
    """How a resolved checkpoint ended."""

    approved = "approved"
    rejected = "rejected"
    edited = "edited"
    answered = "answered"
    timed_out = "timed_out"
    cancelled = "cancelled"
    option = "option"


class ResolvedBy(StrEnum):
    """Who resolved a checkpoint: a person, the timeout policy or another policy rule."""

    human = "human"
    timeout = "timeout"
    policy = "policy"


class Deliverable(_Frozen):
    """A node's output: ``text`` for people, ``data`` for branches, ``files`` for artifacts."""

    text: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    files: list[str] = Field(default_factory=list)


class Run(_Frozen):
    """One execution of one pinned workflow version."""

    id: str
    workflow_id: str
    workflow_hash: str
    status: RunStatus
    inputs: dict[str, Any]
    requester: str
    origin: dict[str, Any] = Field(default_factory=dict)
    pending: list[str] = Field(default_factory=list)
    reason: str | None = None
    rejected: bool = False
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    lease_owner: str | None = None
    lease_epoch: int = 0
    lease_expires_at: datetime | None = None
    schema_version: int = SCHEMA_VERSION
    purged_at: datetime | None = None  # its payloads were removed by the retention policy


class Step(_Frozen):
    """One node execution inside a run."""

    id: str
    run_id: str
    node_id: str
    node_type: str
    status: StepStatus
    attempt: int = 1
    input: dict[str, Any] = Field(default_factory=dict)
    output: Deliverable | None = None
    error: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


class Checkpoint(_Frozen):
    """A pause at a human node: what is shown, who may answer, and until when."""

    id: str
    run_id: str
    node_id: str
    status: CheckpointStatus = CheckpointStatus.open
    outcome: CheckpointOutcome | None = None
    version: int = 0
    kind: str = "approval"
    title: str = ""
    prompt: str = ""
    context: dict[str, Any] = Field(default_factory=dict)
    options: list[str] = Field(default_factory=list)
    response_schema: dict[str, Any] = Field(default_factory=dict)
    proposed: dict[str, Any] = Field(default_factory=dict)
    assignees: list[str] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list)
    quorum: int = 1
    approvals: list[str] = Field(default_factory=list)
    priority: Priority = Priority.medium
    requester: str = ""
    allow_self_approval: bool = False
    confirm: str | None = None
    highlight: list[str] = Field(default_factory=list)
    due_at: datetime | None = None
    escalation_level: int = 0
    shown_hash: str = ""
    created_at: datetime
    resolved_at: datetime | None = None
    editors: list[str] = Field(default_factory=list)
    delegations: dict[str, str] = Field(default_factory=dict)
    content_version: int = 0  # the version at which the proposal last changed (stale copies are refused)


class Delegation(_Frozen):
    """While active, ``delegator``'s new checkpoints go to ``delegate``."""

    id: str
    delegator: str
    delegate: str
    starts_at: datetime
    until: datetime
    created_by: str
    created_at: datetime

    def active(self, at: datetime) -> bool:
        """True when ``at`` falls inside the period."""
        return self.starts_at <= at < self.until


class Decision(_Frozen):
    """A typed answer to a checkpoint, and how it was resolved."""

    id: str
    checkpoint_id: str
    run_id: str
    action: str
    data: dict[str, Any] = Field(default_factory=dict)
    comment: str | None = None
    actor: str
    channel: str
    resolved_by: ResolvedBy = ResolvedBy.human
    rule: str | None = None
    shown_hash: str = ""
    output_hash: str = ""
    diff: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class DeliveryStatus(StrEnum):
    """Outbox state of a delivery."""

    pending = "pending"
    sent = "sent"
    failed = "failed"


class Delivery(_Frozen):
    """One outbound message (outbox row), sent after its transaction commits."""

    id: str
    run_id: str | None = None
    checkpoint_id: str | None = None
    kind: str
    target: str
    payload: dict[str, Any] = Field(default_factory=dict)
    status: DeliveryStatus = DeliveryStatus.pending
    attempts: int = 0
    next_attempt_at: datetime
    channel_ref: str | None = None
    message_ts: str | None = None
    error: str | None = None
    created_at: datetime


class AuditEvent(_Frozen):
    """An append-only, hash-chained record of one state change."""

    seq: int
    at: datetime
    actor: str
    channel: str
    kind: str
    run_id: str | None = None
    checkpoint_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    hash: str
    sealed: bool = False  # its hash covers data keys by digest (engine.audit.SEALED_KEYS)
