"""The gauges of ``/metrics``: indexed counts read at scrape time (see ``engine.observers.Gauges``)."""

from __future__ import annotations

from datetime import datetime

from engine.model import CheckpointStatus, DeliveryStatus
from engine.observers import Gauges
from storage._db import Tx
from storage._sql import Sql, bind_when

__all__ = ["gauges"]

# each count is answered from an index: checkpoints(status), checkpoints(due_at) and
# deliveries(status, next_attempt_at)
_COUNTS = Sql(
    "SELECT"
    f" (SELECT COUNT(*) FROM checkpoints WHERE status = '{CheckpointStatus.open.value}'),"
    f" (SELECT COUNT(*) FROM checkpoints WHERE status = '{CheckpointStatus.open.value}'"
    " AND due_at IS NOT NULL AND due_at <= :now),"
    f" (SELECT COUNT(*) FROM deliveries WHERE status = '{DeliveryStatus.pending.value}')"
)


def gauges(tx: Tx, now: datetime) -> Gauges:
    """Open and overdue checkpoints, and outbox rows not yet sent, as of ``now``."""
    opened, overdue, pending = tx.query(_COUNTS, {"now": bind_when(now, tx.pg)}).fetchone()
    return Gauges(open_checkpoints=opened, overdue_checkpoints=overdue, outbox_pending=pending)
