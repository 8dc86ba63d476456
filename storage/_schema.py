"""Where a database's schema stands against this code's migrations (``signoff db current``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from storage._db import Database, Tx
from storage._migrate import upgrade
from storage._revisions import SchemaState, SchemaStatus, _revisions, status_of

__all__ = [
    "SchemaState",
    "SchemaStatus",
    "read_status",
    "schema_status",
    "upgrade_schema",
    "upgrade_unless_ahead",
]


def _current_revision(tx: Tx) -> str | None:
    if not sa.inspect(tx.conn).has_table("alembic_version"):
        return None
    rows = tx.conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise RuntimeError(f"the database has several schema heads: {sorted(rows)}")
    return rows[0] if rows else None


def read_status(tx: Tx) -> SchemaStatus:
    """The schema status, read in ``tx`` (a Core-framed transaction)."""
    return status_of(_current_revision(tx))


def upgrade_unless_ahead(tx: Tx) -> None:
    """``upgrade head`` in ``tx``, unless a newer version already migrated past this code's head
    (Alembic would refuse a revision it does not know; this code runs on the newer schema)."""
    if read_status(tx).state not in (SchemaState.ahead, SchemaState.current):
        upgrade(tx)


def schema_status(url: str | URL) -> SchemaStatus:
    """Connect to ``url`` and read its schema status (blocking).

    A SQLite file that does not exist yet is reported empty without creating it.

    Raises:
        StorageError: unsupported URL or unreachable database.
    """
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() == "sqlite" and path and path != ":memory:" and not Path(path).exists():
        return SchemaStatus(current=None, head=_revisions()[0], state=SchemaState.empty)
    db = Database(url, pool_size=1)
    try:
        return db.call(read_status, write=False)
    finally:
        db.shutdown()


def upgrade_schema(url: str | URL) -> tuple[SchemaStatus, SchemaStatus]:
    """``alembic upgrade head`` at ``url`` (blocking); returns the status before and after.

    Raises:
        StorageError: unsupported URL, unreachable database or failed migration.
    """
    db = Database(url, pool_size=1)
    try:
        before = db.call(read_status, write=False)
        db.call(upgrade_unless_ahead, write=True)
        return before, db.call(read_status, write=False)
    finally:
        db.shutdown()
