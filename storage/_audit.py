"""The audit chain inside the caller's transaction: seq, prev_hash, hash and the head row."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engine.audit import GENESIS_HASH, event_hash
from engine.model import AuditEvent
from engine.ports import AuditDraft
from storage._db import Tx
from storage._sql import Sql, bind_when, dumps_json
from storage.mapping import AUDIT, insert
from storage.tables import AUDIT_HEAD_ID

__all__ = [
    "INSERT_EVENT",
    "INSERT_HEAD",
    "UPDATE_HEAD",
    "append",
    "events",
    "head",
    "link",
    "lock_head",
    "search",
]

_HEAD = f"SELECT seq, hash FROM audit_head WHERE id = {AUDIT_HEAD_ID}"
_SELECT_HEAD = Sql(_HEAD)
_LOCK_HEAD = Sql(_HEAD, lock=True)
UPDATE_HEAD = Sql(f"UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = {AUDIT_HEAD_ID}")
INSERT_HEAD = Sql(f"INSERT INTO audit_head (id, seq, hash) VALUES ({AUDIT_HEAD_ID}, :seq, :hash)")
INSERT_EVENT = insert(AUDIT)


def lock_head(tx: Tx, drafts: list[AuditDraft]) -> Any:
    """Send the head read (``FOR UPDATE`` on PostgreSQL) when there is something to append.

    Callers send it after locking their own rows, keeping one lock order everywhere (run row,
    checkpoint rows, audit head), and before their writes, so that on PostgreSQL it shares a
    round trip with their reads. Pass the result to ``append``.
    """
    return tx.query(_LOCK_HEAD) if drafts else None


def append(tx: Tx, drafts: list[AuditDraft], locked: Any = None) -> None:
    """Chain ``drafts`` after the current head and move the head, in ``tx``.

    Locking the head row (PostgreSQL) or holding the write lock (SQLite) serialises appends
    across processes, so sequence numbers have no gaps and every link is to the real previous
    event.
    """
    if not drafts:
        return
    found = (locked if locked is not None else tx.query(_LOCK_HEAD)).fetchone()
    rows, seq, digest = link(tx.pg, drafts, found)
    if len(rows) == 1:
        tx.run(INSERT_EVENT, rows[0])
    else:
        tx.many(INSERT_EVENT, rows)
    tx.run(INSERT_HEAD if found is None else UPDATE_HEAD, {"seq": seq, "hash": digest})


def link(pg: bool, drafts: list[AuditDraft], found: Any) -> tuple[list[dict[str, Any]], int, str]:
    """The rows of ``drafts`` chained after the head row ``found`` (``(seq, hash)``, or None when
    the chain is empty), and the new head's sequence number and hash. Writes nothing."""
    seq, prev = (int(found[0]), str(found[1])) if found is not None else (0, GENESIS_HASH)
    rows: list[dict[str, Any]] = []
    for draft in drafts:
        seq += 1
        # hash exactly what reads back from the JSON column (the text stored is this text)
        text = dumps_json(draft.payload)
        payload = json.loads(text)
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
            sealed=True,
        )
        rows.append(
            {
                "seq": seq,
                "at": bind_when(draft.at, pg),
                "actor": draft.actor,
                "channel": draft.channel,
                "kind": draft.kind,
                "run_id": draft.run_id,
                "checkpoint_id": draft.checkpoint_id,
                "payload": text,
                "prev_hash": prev,
                "hash": digest,
                "sealed": True,
            }
        )
        prev = digest
    return rows, seq, prev


def head(tx: Tx) -> tuple[int, str]:
    """The last recorded sequence number and hash (0 and the genesis hash when empty)."""
    found = tx.query(_SELECT_HEAD).fetchone()
    return (int(found[0]), str(found[1])) if found is not None else (0, GENESIS_HASH)


def events(tx: Tx, *, run_id: str | None, since: datetime | None, after_seq: int) -> list[AuditEvent]:
    """Events in sequence order, filtered by run, time and sequence number."""
    where = "WHERE seq > :after_seq"
    params: dict[str, Any] = {"after_seq": after_seq}
    if run_id is not None:
        where += " AND run_id = :run_id"
        params["run_id"] = run_id
    if since is not None:
        where += " AND at >= :since"
        params["since"] = bind_when(since, tx.pg)
    rows = tx.query(AUDIT.select(where + " ORDER BY seq"), params).fetchall()
    return AUDIT.load_all(rows, tx.pg)


def _like(text: str) -> str:
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(
    tx: Tx, *, search: str | None, kind: str | None, before_seq: int | None, limit: int
) -> list[AuditEvent]:
    """Events newest first: ``search`` in the actor, kind, channel, run or checkpoint id (any
    case, wildcards literal), ``kind`` a prefix of the kind, ``before_seq`` the previous page's end."""
    where = ["1 = 1"]
    params: dict[str, Any] = {"limit": limit}
    if search:
        params["q"] = f"%{_like(search)}%"
        where.append(
            "("
            + " OR ".join(
                f"LOWER(COALESCE({column}, '')) LIKE :q ESCAPE '\\'"
                for column in ("actor", "kind", "channel", "run_id", "checkpoint_id")
            )
            + ")"
        )
    if kind:
        params["kind"] = f"{_like(kind)}%"
        where.append("LOWER(kind) LIKE :kind ESCAPE '\\'")
    if before_seq is not None:
        params["before"] = before_seq
        where.append("seq < :before")
    sql = AUDIT.select(f"WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT :limit")
    return AUDIT.load_all(tx.query(sql, params).fetchall(), tx.pg)
