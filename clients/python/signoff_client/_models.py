"""What the server answers, as pydantic models (unknown fields ignored, so a newer server is fine).

``Decision[T]`` types ``data`` by the response model an ask named: the server validated it
against the JSON Schema generated from that model, and the client parses it into the model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "Actor",
    "Checkpoint",
    "CheckpointPage",
    "Decision",
    "Outcome",
    "Pending",
    "Run",
    "RunPage",
    "RunResult",
    "decision_of",
]

T = TypeVar("T", bound=BaseModel)

Outcome = Literal["approved", "edited", "answered", "rejected", "timed_out", "cancelled", "option"]
_WITH_DATA = frozenset({"approved", "edited", "answered", "option"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Actor(_Model):
    """The verified person who decided (never taken from a request body)."""

    id: str
    name: str | None = None


class Decision(_Model, Generic[T]):
    """How a checkpoint was resolved.

    ``data`` is the validated data the person approved, edited or answered, parsed into the
    ask's response model; it is ``None`` when the outcome carries none (rejected, timed out,
    cancelled) or when no response model was given (``raw_data`` always holds the JSON).
    """

    checkpoint_id: str
    outcome: Outcome
    action: str | None = None
    data: T | None = None
    raw_data: dict[str, Any] = {}
    comment: str | None = None
    actor: Actor | None = None
    resolved_by: Literal["human", "timeout", "policy"]
    rule: str | None = None
    channel: str
    decided_at: datetime
    shown_hash: str

    @property
    def approved(self) -> bool:
        """True when the person said yes: approved, edited or answered."""
        return self.outcome in {"approved", "edited", "answered"}


def decision_of(body: dict[str, Any], model: type[T] | None) -> Decision[T]:
    """A ``Decision`` from the server's JSON, ``data`` parsed into ``model``.

    Raises:
        pydantic.ValidationError: An outcome with data that does not fit ``model`` (the model
            differs from the schema the ask was created with).
    """
    fields = {k: v for k, v in body.items() if k != "data"}
    raw = body.get("data") or {}
    data: T | None = None
    if model is not None:
        try:
            data = model.model_validate(raw)
        except ValidationError:
            if body.get("outcome") in _WITH_DATA:
                raise
    cls: type[Decision[Any]] = Decision[model] if model is not None else Decision  # type: ignore[valid-type]
    return cls.model_validate({**fields, "data": data, "raw_data": raw})


class Checkpoint(_Model):
    """A checkpoint, with its decision once resolved."""

    id: str
    run_id: str
    status: Literal["open", "resolved"]
    kind: str
    title: str
    prompt: str
    show: dict[str, Any] = {}
    proposed: dict[str, Any] = {}
    response_schema: dict[str, Any] = {}
    options: list[str] = []
    assignees: list[str] = []
    quorum: int = 1
    approvals: int = 0
    priority: str = "medium"
    due_at: datetime | None = None
    created_at: datetime
    version: int = 0
    shown_hash: str = ""
    decision: dict[str, Any] | None = None
    replayed: bool = False
    """True when the same idempotency key returned an existing checkpoint."""


class Pending(_Model):
    """No decision yet."""

    checkpoint_id: str
    status: Literal["open"] = "open"
    version: int = 0
    approvals: int = 0


class CheckpointPage(_Model):
    """Checkpoints, newest first; pass ``next_cursor`` to continue."""

    items: list[Checkpoint]
    next_cursor: str | None = None


class Run(_Model):
    """A workflow run."""

    id: str
    workflow_id: str
    workflow_version: str = ""
    status: Literal["queued", "running", "waiting", "succeeded", "rejected", "failed", "cancelled"]
    outcome: str | None = None
    """What its checkpoints decided (approved, declined, edited, answered, option, timed_out,
    cancelled); None while it runs and when no checkpoint was resolved."""
    reason: str | None = None
    requester: str = ""
    inputs: dict[str, Any] = {}
    open_checkpoints: list[str] = []
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    replayed: bool = False
    """True when the same idempotency key returned an existing run."""


class RunResult(_Model):
    """A finished run: its final state, each node's output data, and its decisions."""

    run: Run
    outputs: dict[str, dict[str, Any]] = {}
    decisions: list[dict[str, Any]] = []


class RunPage(_Model):
    """Runs, newest first; pass ``next_cursor`` to continue."""

    items: list[Run]
    next_cursor: str | None = None
