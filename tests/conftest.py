"""Shared fixtures: a database URL per backend (SQLite always, PostgreSQL when configured).

When ``SIGNOFF_TEST_POSTGRES_URL`` is set, PostgreSQL cases run and an unreachable server fails
them; when it is unset they are deselected (CI sets it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_ENV = "SIGNOFF_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect PostgreSQL cases when no server is configured."""
    if os.environ.get(PG_ENV):
        return
    drop = [i for i in items if i.get_closest_marker("postgres")]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [i for i in items if i not in drop]


def pg_schema_url(schema: str) -> str:
    """Create ``schema`` in the configured PostgreSQL and return a URL that uses it."""
    raw = os.environ.get(PG_ENV)
    if not raw:
        pytest.fail(f"{PG_ENV} is not set")
    base = make_url(raw)
    admin = sa.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}")
    finally:
        admin.dispose()
    return base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def drop_pg_schema(schema: str) -> None:
    """Drop a schema made by ``pg_schema_url``."""
    admin = sa.create_engine(make_url(os.environ[PG_ENV]))
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for one test: a SQLite file (not created yet: Signoff migrates it on
    start), or a new PostgreSQL schema, migrated as a deploy's ``signoff db upgrade`` does
    (replicas on PostgreSQL do not migrate it themselves)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'signoff.db'}"
        return
    from storage import migrate

    schema = f"signoff_t_{uuid.uuid4().hex[:10]}"
    url = pg_schema_url(schema)
    migrate(url)
    yield url
    drop_pg_schema(schema)


# the shared Slack payload fixtures live beside the repository (../shared/fixtures/slack)
SLACK_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "slack"


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all (nothing has migrated it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    schema = f"signoff_s_{uuid.uuid4().hex[:10]}"
    yield pg_schema_url(schema)
    drop_pg_schema(schema)


def migrate_to(url: str, revision: str) -> None:
    """Bring a database to ``revision`` (an older one: the schema an earlier release left)."""
    from alembic import command

    from storage._migrate import alembic_config

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()
