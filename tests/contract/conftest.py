"""One RunStore contract suite, run on every implementation: memory, SQLite and PostgreSQL.

PostgreSQL runs when ``SIGNOFF_TEST_POSTGRES_URL`` is set; then an unreachable server fails the
tests (it never skips them). Without the variable the postgres cases are deselected and the
run's header says why. Each session works in a fresh schema of that database (dropped at the
end) and every test starts from empty tables, so the suite can run again and again on a shared
database.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from engine.audit import GENESIS_HASH
from engine.ports import RunStore
from engine.testing import InMemoryRunStore
from storage import SqlStore, create_store, migrate
from storage.tables import metadata

PG_ENV = "SIGNOFF_TEST_POSTGRES_URL"
_NO_PG = f"postgres backend deselected: {PG_ENV} is not set (CI sets it)"
# every table of the schema but the audit head, which is reset to the genesis below
_TABLES = [t.name for t in metadata.sorted_tables if t.name != "audit_head"]

ALL_BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_report_header(config: pytest.Config) -> str:
    """Say up front whether PostgreSQL is part of this run."""
    return f"contract suite: postgres at {PG_ENV}" if os.environ.get(PG_ENV) else _NO_PG


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect this folder's postgres cases when no server is configured."""
    if os.environ.get(PG_ENV):
        return
    here = Path(__file__).parent
    drop = [i for i in items if i.get_closest_marker("postgres") and here in Path(str(i.path)).parents]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [i for i in items if i not in drop]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Repeat the reason at the end, where people look."""
    if not os.environ.get(PG_ENV):
        terminalreporter.write_line(_NO_PG)


@dataclass
class Backend:
    """A store under test, plus what the SQL-level tests need to reach its database."""

    name: str
    store: RunStore
    url: str | None = None
    others: list[SqlStore] = field(default_factory=list)

    def another(self) -> RunStore:
        """A second store on the same database (another process, as far as the DB can tell)."""
        if self.url is None:
            return self.store
        extra = create_store(self.url, pool_size=2)
        self.others.append(extra)
        return extra

    async def close(self) -> None:
        """Close every store this backend opened."""
        for extra in self.others:
            await extra.close()
        if isinstance(self.store, SqlStore):
            await self.store.close()


def _pg_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.fail(f"{PG_ENV} is not set")
    return url


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated schema for this session in the database named by the env var."""
    base = make_url(_pg_base_url())
    schema = f"signoff_contract_{os.getpid()}"
    admin = sa.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as e:
        admin.dispose()
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {e}")
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    admin.dispose()


def _empty_pg(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY")
        conn.exec_driver_sql("DELETE FROM audit_head")
        conn.execute(
            sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)"),
            {"genesis": GENESIS_HASH},
        )
    engine.dispose()


async def _open(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if name == "memory":
        return Backend(name, InMemoryRunStore())
    if name == "sqlite":
        url = f"sqlite:///{tmp_path / 'signoff.db'}"
        return Backend(name, create_store(url), url)
    url = request.getfixturevalue("pg_url")
    _empty_pg(url)
    return Backend(name, create_store(url), url)


@pytest.fixture(params=ALL_BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Every RunStore implementation, empty."""
    opened = await _open(request.param, request, tmp_path)
    yield opened
    await opened.close()


@pytest.fixture
def store(backend: Backend) -> RunStore:
    """The store of ``backend``."""
    return backend.store


@pytest.fixture(params=SQL_BACKENDS)
async def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The SQL implementations only (for tests that reach under the store with raw SQL)."""
    opened = await _open(request.param, request, tmp_path)
    yield opened
    await opened.close()


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
async def pg_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """PostgreSQL only (row locks: SQLite's writers hold the whole database's lock)."""
    opened = await _open(request.param, request, tmp_path)
    yield opened
    await opened.close()
