"""Numbered workflow publications: publish (next number unless the newest serves the hash), list."""

from __future__ import annotations

from engine.model import WorkflowPublication, WorkflowVersion
from storage._db import Tx
from storage._queries import publish as store_source
from storage.mapping import PUBLICATIONS, insert

__all__ = ["list_publications", "publish_version"]

_NEWEST = PUBLICATIONS.select("WHERE workflow_id = :workflow_id ORDER BY version DESC LIMIT 1")
_INSERT = insert(PUBLICATIONS)
_OF_ONE = PUBLICATIONS.select("WHERE workflow_id = :workflow_id ORDER BY version")
_ALL = PUBLICATIONS.select("ORDER BY workflow_id, version")


def publish_version(
    tx: Tx, version: WorkflowVersion, *, label: str, note: str, actor: str
) -> tuple[WorkflowPublication, bool]:
    """Store the source, then number it unless the workflow's newest publication serves it.

    Two processes that publish at once may both read the same newest number: the unique
    (workflow_id, version) constraint refuses the second insert (``Conflict``) and the store
    retries, then finds its source already newest.
    """
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
    return publication, True


def list_publications(tx: Tx, workflow_id: str | None) -> list[WorkflowPublication]:
    """Oldest first: one workflow's, or every workflow's by id then number."""
    if workflow_id is None:
        rows = tx.query(_ALL).fetchall()
    else:
        rows = tx.query(_OF_ONE, {"workflow_id": workflow_id}).fetchall()
    return [PUBLICATIONS.load(r, tx.pg) for r in rows]
