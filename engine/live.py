"""Live events: what a watcher of a run is told, read from the audit chain.

Every state change appends one audit event in its own transaction, numbered by a sequence that
only grows, in every process. A live event is an audit event seen from outside: its ``id`` is the
audit sequence, so a watcher that reconnects with the last id it saw gets the events after it,
none twice and none lost (server-sent events' ``Last-Event-ID``), whichever process made them.

Only ids, node names, statuses and actions are passed on: never a comment, a value or a hash
(audit payloads may hold people's data; the page a watcher reloads applies its own masking).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.model import AuditEvent

__all__ = ["LiveEvent", "LiveType", "live_event"]

LiveType = Literal[
    "run.started",
    "node.started",
    "node.succeeded",
    "node.failed",
    "checkpoint.opened",
    "checkpoint.updated",
    "checkpoint.decided",
    "run.finished",
]

# audit kind -> live type; checkpoint and run types are named as the webhooks' (engine/events.py)
_KINDS: dict[str, LiveType] = {
    "run.started": "run.started",
    "step.started": "node.started",
    "step.succeeded": "node.succeeded",
    "step.failed": "node.failed",
    "checkpoint.opened": "checkpoint.opened",
    "checkpoint.vote": "checkpoint.updated",
    "checkpoint.edited": "checkpoint.updated",
    "checkpoint.passed": "checkpoint.decided",
    "decision.recorded": "checkpoint.decided",
    "run.succeeded": "run.finished",
    "run.rejected": "run.finished",
    "run.failed": "run.finished",
    "run.cancelled": "run.finished",
}


class LiveEvent(BaseModel):
    """One event for a watcher; ``id`` is its audit sequence number."""

    model_config = ConfigDict(frozen=True)

    id: int
    type: LiveType
    run_id: str
    checkpoint_id: str | None = None
    node: str | None = None
    status: str | None = None
    action: str | None = None
    resolved_by: str | None = None
    at: datetime


def live_event(event: AuditEvent) -> LiveEvent | None:
    """The live event an audit event makes, or None for one a watcher does not need (a refused
    attempt, a reminder, a verifier's note, ...)."""
    kind = _KINDS.get(event.kind)
    if kind is None or event.run_id is None:
        return None
    payload = event.payload
    action = payload.get("action")
    resolved_by = payload.get("resolved_by")
    return LiveEvent(
        id=event.seq,
        type=kind,
        run_id=event.run_id,
        checkpoint_id=event.checkpoint_id,
        node=str(payload["node"]) if isinstance(payload.get("node"), str) else None,
        status=event.kind.removeprefix("run.") if kind == "run.finished" else None,
        action=action if isinstance(action, str) else None,
        resolved_by=resolved_by if isinstance(resolved_by, str) else None,
        at=event.at,
    )
