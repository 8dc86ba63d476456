"""The outbox: deliveries queued in a state change's transaction, sent after it commits."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from engine.errors import NotFound
from engine.model import Delivery, DeliveryStatus
from engine.ports import AuditDraft
from storage import _audit, _runs
from storage._db import Tx
from storage._sql import Sql, bind_when
from storage.mapping import DELIVERIES

__all__ = ["add", "claim", "due", "listing", "mark"]

_DUE = DELIVERIES.select(
    f"WHERE status = '{DeliveryStatus.pending.value}' AND next_attempt_at <= :now ORDER BY pk LIMIT :limit"
)

# one statement: the compare-and-set on attempts decides which process sends the row
_CLAIM = Sql(
    "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = :until"
    f" WHERE id = :id AND status = '{DeliveryStatus.pending.value}' AND attempts = :attempts"
    f" AND next_attempt_at <= :now RETURNING {DELIVERIES.columns}"
)


@cache
def _listing_sql(by_checkpoint: bool, by_run: bool) -> Sql:
    where = ["1 = 1"]
    if by_checkpoint:
        where.append("checkpoint_id = :cid")
    if by_run:
        where.append("run_id = :run_id")
    return DELIVERIES.select(f"WHERE {' AND '.join(where)} ORDER BY pk")


@cache
def _mark_sql(names: tuple[str, ...]) -> Sql:
    sets = ", ".join(f"{n} = :{n}" for n in names)
    return Sql(f"UPDATE deliveries SET {sets} WHERE id = :id RETURNING pk")


def add(tx: Tx, deliveries: list[Delivery], audit: list[AuditDraft]) -> None:
    """Queue deliveries outside a run commit."""
    _runs.insert_deliveries(tx, deliveries)
    _audit.append(tx, audit)


def due(tx: Tx, now: datetime, limit: int) -> list[Delivery]:
    """Pending deliveries whose next attempt is due, oldest first."""
    rows = tx.query(_DUE, {"now": bind_when(now, tx.pg), "limit": limit}).fetchall()
    return DELIVERIES.load_all(rows, tx.pg)


def claim(tx: Tx, delivery_id: str, attempts: int, now: datetime, until: datetime) -> Delivery | None:
    """Take a due row for one send attempt; None when another process took it first."""
    params = {
        "id": delivery_id,
        "attempts": attempts,
        "now": bind_when(now, tx.pg),
        "until": bind_when(until, tx.pg),
    }
    row = tx.query(_CLAIM, params).fetchone()
    return None if row is None else DELIVERIES.load(row, tx.pg)


def listing(tx: Tx, *, checkpoint_id: str | None, run_id: str | None) -> list[Delivery]:
    """Deliveries in creation order, optionally of one checkpoint or run."""
    sql = _listing_sql(checkpoint_id is not None, run_id is not None)
    rows = tx.query(sql, {"cid": checkpoint_id, "run_id": run_id}).fetchall()
    return DELIVERIES.load_all(rows, tx.pg)


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
        "next_attempt_at": bind_when(next_attempt_at, tx.pg),
        "error": error,
    }
    if channel_ref is not None:
        values["channel_ref"] = channel_ref
    if message_ts is not None:
        values["message_ts"] = message_ts
    updated = tx.query(_mark_sql(tuple(values)), {**values, "id": delivery_id})
    head = _audit.lock_head(tx, audit)
    if updated.fetchone() is None:
        raise NotFound(f"delivery {delivery_id} not found")
    _audit.append(tx, audit, head)
