"""The CLI's light read path: open checkpoints and what masking them needs, read with the database
driver alone (stdlib sqlite3, or psycopg for PostgreSQL) and fixed SQL.

``signoff tasks`` starts in a fraction of the full store's time: no SQLAlchemy, SQLModel table
classes or Alembic are imported. The schema stays safe as the store keeps it: the version table
is read with the driver and compared to the revision ids of storage/migrations (read from the
file names' contents, not through Alembic); a database this code may not read as it is (empty,
behind) is left to the full store, which migrates it or names ``signoff db upgrade``.

The column lists and kinds are the store's (tests/contract/test_light_read.py compares them with
``storage.mapping``), so rows read here validate into the same engine models.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from engine.errors import NotFound
from engine.model import AuditEvent, Checkpoint, CheckpointStatus, Decision, Run, WorkflowVersion
from storage._errors import StorageError
from storage._revisions import SchemaStatus, status_of
from storage._sql import Rows, Sql, bind_when

__all__ = ["LightReader", "open_light"]

T = TypeVar("T")

CHECKPOINTS: Rows[Checkpoint] = Rows(
    Checkpoint,
    "checkpoints",
    whens={"due_at", "created_at", "resolved_at"},
    jsons={
        "context",
        "options",
        "response_schema",
        "proposed",
        "assignees",
        "notify",
        "approvals",
        "highlight",
        "editors",
        "delegations",
    },
)
RUNS: Rows[Run] = Rows(
    Run,
    "runs",
    whens={"created_at", "updated_at", "finished_at", "lease_expires_at", "purged_at", "paused_at"},
    jsons={"inputs", "origin", "pending"},
)
WORKFLOWS: Rows[WorkflowVersion] = Rows(WorkflowVersion, "workflow_versions", whens={"created_at"}, jsons=())
DECISIONS: Rows[Decision] = Rows(Decision, "decisions", whens={"created_at"}, jsons={"data", "diff"})
AUDIT: Rows[AuditEvent] = Rows(AuditEvent, "audit_events", whens={"at"}, jsons={"payload"})

_OPEN = f"status = '{CheckpointStatus.open.value}'"
_BEFORE = "(created_at < :before_at OR (created_at = :before_at AND id < :before_id))"
_CHECKPOINT = CHECKPOINTS.select("WHERE id = :cid")
_RUN = RUNS.select("WHERE id = :run_id")
_WORKFLOW = WORKFLOWS.select("WHERE content_hash = :content_hash")
_RUN_CHECKPOINTS = CHECKPOINTS.select("WHERE run_id = :run_id ORDER BY created_at DESC, pk DESC LIMIT :limit")
_RUN_DECISIONS = DECISIONS.select("WHERE run_id = :run_id ORDER BY pk")
_RUN_EDITS = AUDIT.select("WHERE run_id = :run_id AND kind = 'checkpoint.edited' ORDER BY seq")
_HAS_VERSION_LITE = Sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
_VERSION = Sql("SELECT version_num FROM alembic_version")


class LightReader:
    """One read-only transaction on the database (one snapshot for the whole command)."""

    def __init__(self, conn: Any, *, pg: bool, errors: tuple[type[BaseException], ...]) -> None:
        self._conn = conn
        self.pg = pg
        self._errors = errors

    def _rows(self, sql: Sql, params: dict[str, Any]) -> list[Any]:
        try:
            cursor = self._conn.execute(sql.pg if self.pg else sql.lite, params)
            return list(cursor.fetchall())
        except self._errors as exc:
            raise StorageError(str(exc)) from exc

    def schema(self) -> SchemaStatus:
        """Where the schema stands against this code's migrations (read from the version table)."""
        if self.pg:
            found = self._rows(Sql("SELECT to_regclass('alembic_version') IS NOT NULL"), {})[0][0]
        else:
            found = bool(
                self._rows(
                    Sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"), {}
                )
            )
        rows = self._rows(_VERSION, {}) if found else []
        if len(rows) > 1:
            raise StorageError(f"the database has several schema heads: {sorted(r[0] for r in rows)}")
        return status_of(str(rows[0][0]) if rows else None)

    def _where(
        self, due_by: datetime | None, before: tuple[datetime, str] | None
    ) -> tuple[str, dict[str, Any]]:
        where, params = [_OPEN], {}
        if due_by is not None:
            where.append("due_at IS NOT NULL AND due_at <= :due_by")
            params["due_by"] = bind_when(due_by, self.pg)
        if before is not None:
            where.append(_BEFORE)
            params.update(before_at=bind_when(before[0], self.pg), before_id=before[1])
        return " AND ".join(where), params

    def open_checkpoints(
        self, *, limit: int, before: tuple[datetime, str] | None = None, due_by: datetime | None = None
    ) -> list[Checkpoint]:
        """Open checkpoints (due by ``due_by``), newest first, ``limit`` after the cursor ``before``."""
        where, params = self._where(due_by, before)
        sql = CHECKPOINTS.select(f"WHERE {where} ORDER BY created_at DESC, id DESC LIMIT :limit")
        return CHECKPOINTS.load_all(self._rows(sql, {**params, "limit": limit}), self.pg)

    def count_open(
        self, *, before: tuple[datetime, str] | None = None, due_by: datetime | None = None
    ) -> int:
        """How many open checkpoints (due by ``due_by``) come after the cursor ``before``."""
        where, params = self._where(due_by, before)
        return int(self._rows(Sql(f"SELECT COUNT(*) FROM checkpoints WHERE {where}"), params)[0][0])

    def checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """One checkpoint. Raises NotFound."""
        rows = self._rows(_CHECKPOINT, {"cid": checkpoint_id})
        if not rows:
            raise NotFound(f"checkpoint {checkpoint_id} not found")
        return CHECKPOINTS.load(rows[0], self.pg)

    def run(self, run_id: str) -> Run:
        """One run. Raises NotFound."""
        rows = self._rows(_RUN, {"run_id": run_id})
        if not rows:
            raise NotFound(f"run {run_id} not found")
        return RUNS.load(rows[0], self.pg)

    def workflow_version(self, content_hash: str) -> WorkflowVersion:
        """A stored workflow version. Raises NotFound."""
        rows = self._rows(_WORKFLOW, {"content_hash": content_hash})
        if not rows:
            raise NotFound(f"workflow version {content_hash} not found")
        return WORKFLOWS.load(rows[0], self.pg)

    # what masking reads (bot.wiring.stored_redactor, engine.sensitive.run_redactor), as the store answers it
    async def get_workflow_version(self, content_hash: str) -> WorkflowVersion:
        """A stored workflow version. Raises NotFound."""
        return self.workflow_version(content_hash)

    async def list_checkpoints(self, *, run_id: str | None = None, limit: int = 500) -> list[Checkpoint]:
        """A run's checkpoints, newest first."""
        if run_id is None:
            raise ValueError("the light reader lists the checkpoints of one run")
        return CHECKPOINTS.load_all(self._rows(_RUN_CHECKPOINTS, {"run_id": run_id, "limit": limit}), self.pg)

    async def list_decisions(self, *, run_id: str | None = None) -> list[Decision]:
        """A run's resolving decisions in decision order."""
        if run_id is None:
            raise ValueError("the light reader lists the decisions of one run")
        return DECISIONS.load_all(self._rows(_RUN_DECISIONS, {"run_id": run_id}), self.pg)

    async def audit_events(self, *, run_id: str | None = None) -> list[AuditEvent]:
        """A run's ``checkpoint.edited`` events in sequence order (the only ones masking reads)."""
        if run_id is None:
            raise ValueError("the light reader lists the audit events of one run")
        return AUDIT.load_all(self._rows(_RUN_EDITS, {"run_id": run_id}), self.pg)

    def close(self) -> None:
        """End the transaction and the connection."""
        try:
            self._conn.rollback()
        finally:
            self._conn.close()


def open_light(url: str, *, busy_timeout_ms: int = 5000) -> LightReader | None:
    """A light reader on ``url`` (``sqlite:///path`` or ``postgresql+psycopg://``), or None for a
    URL it does not handle (in memory, another driver) or a SQLite file that does not exist yet
    (the full store creates it). Raises StorageError when unreachable."""
    sqlite = next((p for p in ("sqlite:///", "sqlite+pysqlite:///") if url.startswith(p)), None)
    if sqlite is not None:
        # query options are the driver's connect arguments (a timeout, ...): not needed to read
        path = unquote(url.removeprefix(sqlite).split("?", 1)[0])
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
        try:
            conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
            conn.execute("BEGIN")  # one snapshot for every read of the command
        except sqlite3.Error as exc:
            raise StorageError(str(exc)) from exc
        return LightReader(conn, pg=False, errors=(sqlite3.Error,))
    if url.startswith("postgresql+psycopg://"):
        import psycopg

        try:
            pg_conn = psycopg.connect(
                "postgresql://" + url.removeprefix("postgresql+psycopg://"),
                autocommit=False,
                connect_timeout=10,
            )
            pg_conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            pg_conn.read_only = True
        except psycopg.Error as exc:
            raise StorageError(str(exc)) from exc
        return LightReader(pg_conn, pg=True, errors=(psycopg.Error,))
    return None
