"""The outbox: deliveries queued in a state change's transaction, sent after it commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFound
from engine.model import Delivery, DeliveryStatus
from engine.ports import AuditDraft
from storage import _audit, _runs
from storage._db import Tx
from storage.mapping import DELIVERIES, to_models

__all__ = ["add", "due", "listing", "mark"]

_del = DELIVERIES.table
_DUE = (
    DELIVERIES.select()
    .where(
        _del.c.status == DeliveryStatus.pending.value,
        _del.c.next_attempt_at <= sa.bindparam("now"),
    )
    .order_by(_del.c.pk)
    .limit(sa.bindparam("limit"))
)


def add(tx: Tx, deliveries: list[Delivery], audit: list[AuditDraft]) -> None:
    """Queue deliveries outside a run commit."""
    _runs.insert_deliveries(tx, deliveries)
    _audit.append(tx, audit)


def due(tx: Tx, now: datetime, limit: int) -> list[Delivery]:
    """Pending deliveries whose next attempt is due, oldest first."""
    return to_models(Delivery, tx.execute(_DUE, {"now": now, "limit": limit}).all())


def listing(tx: Tx, *, checkpoint_id: str | None, run_id: str | None) -> list[Delivery]:
    """Deliveries in creation order, optionally of one checkpoint or run."""
    stmt = DELIVERIES.select()
    if checkpoint_id is not None:
        stmt = stmt.where(_del.c.checkpoint_id == checkpoint_id)
    if run_id is not None:
        stmt = stmt.where(_del.c.run_id == run_id)
    return to_models(Delivery, tx.execute(stmt.order_by(_del.c.pk)).all())


def mark(
    tx: Tx,
    delivery_id: str,
    *,
    status: DeliveryStatus,
    attempts: int,
    next_attempt_at: datetime,
    error: str | None,
    channel_ref: str | None,
    message_ts: str | None,
    audit: list[AuditDraft],
) -> None:
    """Record a send attempt; ``channel_ref`` and ``message_ts`` are kept unless given."""
    values: dict[str, Any] = {
        "status": status.value,
        "attempts": attempts,
        "next_attempt_at": next_attempt_at,
        "error": error,
    }
    if channel_ref is not None:
        values["channel_ref"] = channel_ref
    if message_ts is not None:
        values["message_ts"] = message_ts
    result = tx.execute(sa.update(_del).where(_del.c.id == delivery_id).values(values))
    if result.rowcount == 0:
        raise NotFound(f"delivery {delivery_id} not found")
    _audit.append(tx, audit)
