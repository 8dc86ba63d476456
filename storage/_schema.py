"""Where a database's schema stands against this code's migrations (``signoff db current``)."""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import URL, make_url

from storage._db import Database, Tx
from storage._migrate import MIGRATIONS_DIR, upgrade

# Alembic itself is imported only to migrate: reading where a schema stands (every start, every
# CLI command) needs the version table and the revision ids written in storage/migrations/versions.
_REVISION = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN = re.compile(r"^down_revision(?:\s*:[^=]+)?\s*=\s*(?:None|[\"']([^\"']+)[\"'])", re.M)

__all__ = [
    "SchemaState",
    "SchemaStatus",
    "read_status",
    "schema_status",
    "upgrade_schema",
    "upgrade_unless_ahead",
]


class SchemaState(StrEnum):
    """How a database's revision relates to the newest revision this code ships."""

    current = "current"  # at this code's head
    behind = "behind"  # an older revision of this code: `signoff db upgrade`
    empty = "empty"  # no schema at all: `signoff db upgrade` creates it
    ahead = "ahead"  # a revision this code does not know: written by a newer version


class SchemaStatus(BaseModel):
    """A database's schema revision and this code's newest one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    current: str | None
    head: str
    state: SchemaState

    @property
    def usable(self) -> bool:
        """True when this code may run on the schema: at its head, or at a newer one (a rolling
        upgrade migrates before the older replicas stop, so migrations only ever add)."""
        return self.state in (SchemaState.current, SchemaState.ahead)

    def describe(self) -> str:
        """One line for people: where the schema is and what to do about it."""
        at = f"revision {self.current}" if self.current else "empty (no tables)"
        match self.state:
            case SchemaState.current:
                return f"the database schema is at revision {self.head}, the newest this version knows"
            case SchemaState.ahead:
                return (
                    f"the database schema is at {at}, newer than this version's {self.head} "
                    "(a newer Signoff migrated it)"
                )
            case SchemaState.behind | SchemaState.empty:
                return (
                    f"the database schema is {at} but this version of Signoff needs revision "
                    f"{self.head}: run `signoff db upgrade`"
                )


@functools.cache
def _revisions() -> tuple[str, frozenset[str]]:
    """This code's head revision and every revision it knows, read from the migration files
    (tests/contract/test_schema.py checks them against Alembic's own reading)."""
    known: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN.search(text)
        if revision is None or down is None:
            raise RuntimeError(f"{path.name}: no revision or down_revision")
        known.add(revision.group(1))
        if down.group(1):
            parents.add(down.group(1))
    heads = known - parents
    if len(heads) != 1:
        raise RuntimeError(f"storage/migrations has {len(heads)} head revisions: {sorted(heads)}")
    return heads.pop(), frozenset(known)


def _current_revision(tx: Tx) -> str | None:
    if not sa.inspect(tx.conn).has_table("alembic_version"):
        return None
    rows = tx.conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise RuntimeError(f"the database has several schema heads: {sorted(rows)}")
    return rows[0] if rows else None


def read_status(tx: Tx) -> SchemaStatus:
    """The schema status, read in ``tx`` (a Core-framed transaction)."""
    current = _current_revision(tx)
    head, known = _revisions()
    if current is None:
        state = SchemaState.empty
    elif current == head:
        state = SchemaState.current
    elif current in known:
        state = SchemaState.behind
    else:
        state = SchemaState.ahead
    return SchemaStatus(current=current, head=head, state=state)


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
