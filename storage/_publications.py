"""Numbered workflow publications: publish (next number unless the newest serves the hash), list."""

from __future__ import annotations

from engine.model import WorkflowPublication, WorkflowVersion
from engine.versions import published_event
from storage import _audit
from storage._db import Tx
from storage._queries import publish as store_source
from storage._sql import Sql
from storage.mapping import PUBLICATIONS, insert

__all__ = ["list_publications", "publish_version"]

# PostgreSQL: one publisher per workflow at a time (SQLite's BEGIN IMMEDIATE already is one)
_LOCK = Sql("SELECT pg_advisory_xact_lock(:space, hashtext(:workflow_id))")
_LOCK_SPACE = 0x5160
_NEWEST = PUBLICATIONS.select("WHERE workflow_id = :workflow_id ORDER BY version DESC LIMIT 1")
_INSERT = insert(PUBLICATIONS)
_OF_ONE = PUBLICATIONS.select("WHERE workflow_id = :workflow_id ORDER BY version")
_ALL = PUBLICATIONS.select("ORDER BY workflow_id, version")


def publish_version(
    tx: Tx, version: WorkflowVersion, *, label: str, note: str, actor: str, channel: str | None
) -> tuple[WorkflowPublication, bool]:
    """Store the source, then number it unless the workflow's newest publication serves it.

    Publishers of one workflow take turns (a transaction-scoped advisory lock on PostgreSQL,
    the write lock on SQLite), so each reads the newest number the previous one wrote; should
    two still pick one number, the unique (workflow_id, version) constraint refuses the second
    insert (``Conflict``) and the store retries.
    """
    if tx.pg:
        tx.query(_LOCK, {"space": _LOCK_SPACE, "workflow_id": version.workflow_id}).fetchone()
    store_source(tx, version)
    row = tx.query(_NEWEST, {"workflow_id": version.workflow_id}).fetchone()
    newest = None if row is None else PUBLICATIONS.load(row, tx.pg)
    if newest is not None and newest.content_hash == version.content_hash:
        return newest, False
    publication = WorkflowPublication(
        workflow_id=version.workflow_id,
        version=1 if newest is None else newest.version + 1,
        content_hash=version.content_hash,
        label=label,
        note=note,
        actor=actor,
        published_at=version.created_at,
    )
    tx.run(_INSERT, PUBLICATIONS.params(publication, tx.pg))
    if channel is not None:
        _audit.append(tx, [published_event(publication, channel)])
    return publication, True


def list_publications(tx: Tx, workflow_id: str | None) -> list[WorkflowPublication]:
    """Oldest first: one workflow's, or every workflow's by id then number."""
    if workflow_id is None:
        rows = tx.query(_ALL).fetchall()
    else:
        rows = tx.query(_OF_ONE, {"workflow_id": workflow_id}).fetchall()
    return [PUBLICATIONS.load(r, tx.pg) for r in rows]
