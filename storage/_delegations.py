"""Delegations: while one is active, the delegator's new checkpoints go to the delegate."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from engine.errors import NotFound
from engine.model import Delegation
from engine.ports import AuditDraft
from storage import _audit
from storage._db import Tx
from storage._sql import Sql, bind_when
from storage.mapping import DELEGATIONS, insert

__all__ = ["add", "end", "listing"]

_INSERT = insert(DELEGATIONS)
_END = Sql(
    "UPDATE delegations SET until = CASE WHEN until > :at THEN :at ELSE until END WHERE id = :id"
    f" RETURNING {DELEGATIONS.columns}"
)


@cache
def _listing_sql(active: bool, by_delegator: bool) -> Sql:
    where = ["1 = 1"]
    if active:
        where.append("starts_at <= :at AND until > :at")
    if by_delegator:
        where.append("delegator = :delegator")
    return DELEGATIONS.select(f"WHERE {' AND '.join(where)} ORDER BY pk")


def add(tx: Tx, delegation: Delegation, audit: list[AuditDraft]) -> None:
    """Insert a delegation and its audit events."""
    head = _audit.lock_head(tx, audit)
    tx.run(_INSERT, DELEGATIONS.params(delegation, tx.pg))
    _audit.append(tx, audit, head)


def listing(tx: Tx, *, active_at: datetime | None, delegator: str | None) -> list[Delegation]:
    """Delegations, oldest first, optionally only those active at a time or of one person."""
    sql = _listing_sql(active_at is not None, delegator is not None)
    params = {"at": bind_when(active_at, tx.pg), "delegator": delegator}
    return DELEGATIONS.load_all(tx.query(sql, params).fetchall(), tx.pg)


def end(tx: Tx, delegation_id: str, at: datetime, audit: list[AuditDraft]) -> Delegation:
    """End a delegation early, with its audit events. Raises NotFound."""
    found = tx.query(_END, {"id": delegation_id, "at": bind_when(at, tx.pg)})
    head = _audit.lock_head(tx, audit)
    row = found.fetchone()
    if row is None:
        raise NotFound(f"delegation {delegation_id} not found")
    _audit.append(tx, audit, head)
    return DELEGATIONS.load(row, tx.pg)
