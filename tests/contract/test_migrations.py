"""Storage schema: Alembic's head matches the SQLModel tables; migrating is idempotent."""

from __future__ import annotations

import itertools
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import storage
from storage._migrate import alembic_config
from storage.tables import metadata
from tests.contract.conftest import Backend

# the newest revision: every migration added later moves it, so the tests name it, not a number
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _diffs(url: str) -> list[object]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_upgrade_head_matches_the_tables_on_fresh_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    storage.migrate(url)
    assert _diffs(url) == []
    assert _revision(url) == HEAD


async def test_upgrade_head_matches_the_tables(sql_backend: Backend) -> None:
    assert sql_backend.url is not None
    assert _diffs(sql_backend.url) == []


async def test_migrating_again_changes_nothing(sql_backend: Backend) -> None:
    assert sql_backend.url is not None
    storage.migrate(sql_backend.url)
    storage.migrate(sql_backend.url)
    assert _revision(sql_backend.url) == HEAD
    assert await sql_backend.store.audit_head() == (0, "0" * 64)


def test_one_linear_history() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [HEAD]
    # numbered one after another, each revising the one before it
    revisions = list(reversed(list(scripts.walk_revisions())))
    assert [r.revision for r in revisions] == [f"{i:04d}" for i in range(1, len(revisions) + 1)]
    assert all(r.down_revision == p.revision for p, r in itertools.pairwise(revisions))


def test_public_api_is_pinned() -> None:
    assert storage.__all__ == [
        "SchemaState",
        "SchemaStatus",
        "SqlStore",
        "StorageError",
        "create_store",
        "migrate",
        "schema_status",
        "upgrade_schema",
    ]
