"""'Waiting for me' reads through the assignee index, whatever else is open.

With 100,000 open checkpoints, walking the open ones through the status index (and matching
groups with a LIKE joined to every open checkpoint) took close to a second per inbox; the plan
must start from the person's principals. On PostgreSQL the open groups and channels were read
from every assignee row (a ``LIKE 'group:%'`` the default-collation index cannot answer), 10-40
ms of a 20-40 ms inbox. Checked with each database's own query plan, not a timer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

import storage
from storage import _clients, _queries
from storage._sql import Sql


class PlanTx:
    """Runs each query for real and keeps SQLite's plan of it."""

    pg = False

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self.plans: list[str] = []

    def query(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Any:
        rows = self.raw.execute("EXPLAIN QUERY PLAN " + sql.lite, params or {}).fetchall()
        self.plans.append("\n".join(str(r[-1]) for r in rows))
        return self.raw.execute(sql.lite, params or {})


@pytest.fixture
def tx(tmp_path: Path) -> Iterator[PlanTx]:
    path = tmp_path / "plan.db"
    storage.migrate(f"sqlite:///{path}")
    raw = sqlite3.connect(path)
    try:
        yield PlanTx(raw)
    finally:
        raw.close()


def test_open_checkpoints_for_starts_from_the_assignee_index(tx: PlanTx) -> None:
    _queries.open_for(tx, ["user:U1", "role:finance"], 50, None)  # type: ignore[arg-type]
    [plan] = tx.plans
    assert "ix_checkpoint_assignees_principal (principal=?)" in plan
    assert "ix_checkpoints_status" not in plan, plan


def test_open_groups_and_channels_come_from_a_range_of_the_assignee_index(tx: PlanTx) -> None:
    _queries.open_principals(tx, ("group", "channel"))  # type: ignore[arg-type]
    [plan] = tx.plans
    assert "ix_checkpoint_assignees_principal (principal>? AND principal<?)" in plan, plan
    assert "ix_checkpoints_status" not in plan, plan


def test_the_api_list_by_assignee_starts_from_the_assignee_index(tx: PlanTx) -> None:
    _clients.page_checkpoints(tx, open_only=True, assignee="user:U1", after=None, limit=50)  # type: ignore[arg-type]
    [plan] = tx.plans
    assert "ix_checkpoint_assignees_principal (principal=?)" in plan, plan
    assert "ix_checkpoints_status" not in plan, plan


class PgPlanTx:
    """Runs each query for real on PostgreSQL and keeps its plan."""

    pg = True

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.plans: list[str] = []

    def query(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Any:
        rows = self.raw.execute("EXPLAIN " + sql.pg, params or {}).fetchall()
        self.plans.append("\n".join(str(r[0]) for r in rows))
        return self.raw.execute(sql.pg, params or {})


@pytest.fixture
def pg_tx(pg_url: str) -> Iterator[PgPlanTx]:
    conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as raw:
        # PostgreSQL plans from statistics: give it the shape of a busy inbox (many open
        # checkpoints, five for each person; none for a group or channel), rolled back afterwards
        raw.execute(
            "INSERT INTO checkpoints (id, run_id, node_id, status, version, kind, title, prompt,"
            " context, options, response_schema, proposed, assignees, notify, quorum, approvals,"
            " priority, requester, allow_self_approval, highlight, escalation_level, shown_hash,"
            " created_at) SELECT 'cp' || g, 'run' || g, 'gate', 'open', 1, 'approval', '', '',"
            " '{}', '[]', '{}', '{}', '[]', '[]', 1, '[]', 'medium', 'bench', false, '[]', 0, '',"
            " now() FROM generate_series(1, 5000) g"
        )
        raw.execute(
            "INSERT INTO checkpoint_assignees (checkpoint_id, principal)"
            " SELECT 'cp' || g, 'user:U' || (g % 1000) FROM generate_series(1, 5000) g"
        )
        raw.execute("ANALYZE checkpoints")
        raw.execute("ANALYZE checkpoint_assignees")
        yield PgPlanTx(raw)
        raw.rollback()


@pytest.mark.postgres
def test_open_checkpoints_for_starts_from_the_assignee_index_on_postgres(pg_tx: PgPlanTx) -> None:
    _queries.open_for(pg_tx, ["user:U1", "role:finance"], 50, None)  # type: ignore[arg-type]
    [plan] = pg_tx.plans
    assert "ix_checkpoint_assignees_principal" in plan, plan
    assert "Index Cond: ((principal)::text = ANY" in plan, plan
    assert "ix_checkpoints_status" not in plan, plan


@pytest.mark.postgres
def test_open_groups_and_channels_come_from_a_range_of_the_assignee_index_on_postgres(
    pg_tx: PgPlanTx,
) -> None:
    _queries.open_principals(pg_tx, ("group", "channel"))  # type: ignore[arg-type]
    [plan] = pg_tx.plans
    # the pattern operator class turns each prefix into a range of the index, not a filter
    assert "Index Cond: (((principal)::text ~>=~ 'group:'::text)" in plan, plan
    assert "Index Cond: (((principal)::text ~>=~ 'channel:'::text)" in plan, plan
    assert "ix_checkpoints_status" not in plan, plan


@pytest.mark.postgres
def test_the_api_list_by_assignee_starts_from_the_assignee_index_on_postgres(pg_tx: PgPlanTx) -> None:
    _clients.page_checkpoints(pg_tx, open_only=True, assignee="user:U1", after=None, limit=50)  # type: ignore[arg-type]
    [plan] = pg_tx.plans
    assert "Index Cond: ((principal)::text = 'user:U1'::text)" in plan, plan
    assert "Seq Scan on checkpoints" not in plan, plan
