"""Where a schema revision stands against this code's migrations, without SQLAlchemy or Alembic.

The revision ids are read from the files in storage/migrations/versions, so that a reader that
only needs the version table (``signoff tasks``, every start) imports neither library.
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

__all__ = ["MIGRATIONS_DIR", "SchemaState", "SchemaStatus", "status_of"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Alembic itself is imported only to migrate: reading where a schema stands (every start, every
# CLI command) needs the version table and the revision ids written in storage/migrations/versions.
_REVISION = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN = re.compile(r"^down_revision(?:\s*:[^=]+)?\s*=\s*(?:None|[\"']([^\"']+)[\"'])", re.M)


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


def status_of(current: str | None) -> SchemaStatus:
    """The status of a database whose version table holds ``current`` (None: no schema)."""
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
