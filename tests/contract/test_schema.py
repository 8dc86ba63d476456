"""Schema status and deliberate migrations (``signoff db current|upgrade``), SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from engine.errors import EngineError
from storage import SchemaState, create_store, schema_status, upgrade_schema
from storage._migrate import alembic_config
from tests.conftest import migrate_to

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def stamp(url: str, revision: str) -> None:
    """Write a revision this code does not know, as a newer release would."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def test_a_missing_sqlite_file_reads_empty_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    status = schema_status(f"sqlite:///{path}")
    assert (status.current, status.head, status.state) == (None, HEAD, SchemaState.empty)
    assert not status.usable
    assert not path.exists()


def test_empty_then_upgraded(empty_url: str) -> None:
    status = schema_status(empty_url)
    assert status.state is SchemaState.empty
    assert "signoff db upgrade" in status.describe()
    before, after = upgrade_schema(empty_url)
    assert (before.current, after.current, after.state) == (None, HEAD, SchemaState.current)
    assert after.usable
    again_before, again_after = upgrade_schema(empty_url)
    assert again_before == again_after == after


def test_an_older_revision_is_behind_and_upgrades(empty_url: str) -> None:
    migrate_to(empty_url, "0002")
    status = schema_status(empty_url)
    assert (status.current, status.state) == ("0002", SchemaState.behind)
    assert not status.usable
    assert status.describe() == (
        f"the database schema is revision 0002 but this version of Signoff needs revision {HEAD}: "
        "run `signoff db upgrade`"
    )
    before, after = upgrade_schema(empty_url)
    assert (before.current, after.current) == ("0002", HEAD)


async def test_a_store_opened_without_migrating_leaves_the_schema_alone(empty_url: str) -> None:
    migrate_to(empty_url, "0002")
    store = create_store(empty_url, migrate=False)
    try:
        assert (await store.schema_status()).current == "0002"
    finally:
        await store.close()
    assert schema_status(empty_url).current == "0002"


async def test_a_newer_schema_is_usable_and_left_as_it_is(empty_url: str) -> None:
    upgrade_schema(empty_url)
    stamp(empty_url, "9999_from_a_newer_release")
    status = schema_status(empty_url)
    assert (status.state, status.usable) == (SchemaState.ahead, True)
    assert f"newer than this version's {HEAD}" in status.describe()
    # neither an explicit upgrade nor a migrating start-up trips over the unknown revision
    before, after = upgrade_schema(empty_url)
    assert before == after == status
    store = create_store(empty_url)
    try:
        assert (await store.schema_status()).current == "9999_from_a_newer_release"
    finally:
        await store.close()


def test_an_unreachable_database_is_a_storage_error() -> None:
    with pytest.raises(EngineError, match="database error"):
        schema_status("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_the_revisions_read_from_the_files_are_alembics() -> None:
    # the status is read without importing Alembic (fast CLI start): the same head, the same set
    from storage._revisions import _revisions

    scripts = ScriptDirectory.from_config(alembic_config())
    assert _revisions() == (HEAD, frozenset(r.revision for r in scripts.walk_revisions()))


def test_opening_a_current_schema_does_not_import_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 's.db'}"
    upgrade_schema(url)
    probe = (
        "import sys, asyncio\n"
        "from storage import create_store\n"
        f"store = create_store({url!r})\n"
        "print(asyncio.run(store.schema_status()).state.value, 'alembic' in sys.modules)\n"
        "asyncio.run(store.close())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.split() == ["current", "False"]
