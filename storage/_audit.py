"""The audit chain inside the caller's transaction: seq, prev_hash, hash and the head row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.audit import GENESIS_HASH, event_hash
from engine.model import AuditEvent
from engine.ports import AuditDraft
from storage._db import Tx
from storage.mapping import AUDIT, normalise_json, table_of, to_models
from storage.tables import AUDIT_HEAD_ID, AuditHeadRow

__all__ = ["append", "events", "head"]

_head = table_of(AuditHeadRow)
_events = AUDIT.table

_SELECT_HEAD = sa.select(_head.c.seq, _head.c.hash).where(_head.c.id == AUDIT_HEAD_ID)
_LOCK_HEAD = _SELECT_HEAD.with_for_update()
_UPDATE_HEAD = (
    sa.update(_head)
    .where(_head.c.id == AUDIT_HEAD_ID)
    .values(seq=sa.bindparam("new_seq"), hash=sa.bindparam("new_hash"))
)
_INSERT_EVENTS = sa.insert(_events)


def append(tx: Tx, drafts: list[AuditDraft]) -> None:
    """Chain ``drafts`` after the current head and move the head, in ``tx``.

    Locking the head row (PostgreSQL) or holding the write lock (SQLite) serialises appends
    across processes, so sequence numbers have no gaps and every link is to the real previous
    event.
    """
    if not drafts:
        return
    found = tx.execute(_LOCK_HEAD if tx.pg else _SELECT_HEAD).first()
    seq, prev = (int(found.seq), str(found.hash)) if found is not None else (0, GENESIS_HASH)
    rows: list[dict[str, Any]] = []
    for draft in drafts:
        seq += 1
        # hash exactly what reads back from the JSON column
        payload = normalise_json(draft.payload)
        digest = event_hash(
            seq=seq,
            at=draft.at,
            actor=draft.actor,
            channel=draft.channel,
            kind=draft.kind,
            run_id=draft.run_id,
            checkpoint_id=draft.checkpoint_id,
            payload=payload,
            prev_hash=prev,
        )
        rows.append(
            {
                "seq": seq,
                "at": draft.at,
                "actor": draft.actor,
                "channel": draft.channel,
                "kind": draft.kind,
                "run_id": draft.run_id,
                "checkpoint_id": draft.checkpoint_id,
                "payload": payload,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    tx.execute(_INSERT_EVENTS, rows[0] if len(rows) == 1 else rows)
    if found is None:
        tx.execute(sa.insert(_head).values(id=AUDIT_HEAD_ID, seq=seq, hash=prev))
    else:
        tx.execute(_UPDATE_HEAD, {"new_seq": seq, "new_hash": prev})


def head(tx: Tx) -> tuple[int, str]:
    """The last recorded sequence number and hash (0 and the genesis hash when empty)."""
    found = tx.execute(_SELECT_HEAD).first()
    return (int(found.seq), str(found.hash)) if found is not None else (0, GENESIS_HASH)


def events(tx: Tx, *, run_id: str | None, since: datetime | None, after_seq: int) -> list[AuditEvent]:
    """Events in sequence order, filtered by run, time and sequence number."""
    stmt = AUDIT.select().where(_events.c.seq > after_seq)
    if run_id is not None:
        stmt = stmt.where(_events.c.run_id == run_id)
    if since is not None:
        stmt = stmt.where(_events.c.at >= since)
    return to_models(AuditEvent, tx.execute(stmt.order_by(_events.c.seq)).all())
