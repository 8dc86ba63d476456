"""'Waiting for me' reads through the assignee index on SQLite, whatever else is open.

With 100,000 open checkpoints, walking the open ones through the status index (and matching
groups with a LIKE joined to every open checkpoint) took close to a second per inbox; the plan
must start from the person's principals. Checked with SQLite's own query plan, not a timer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import storage
from storage import _queries
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
