"""Read-only queries: workflow versions, runs, steps, checkpoints, decisions."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from engine.errors import NotFound
from engine.model import (
    Checkpoint,
    CheckpointOutcome,
    CheckpointStatus,
    Decision,
    Run,
    RunStatus,
    Step,
    WorkflowVersion,
)
from storage._db import Tx
from storage._runs import SELECT_STEPS
from storage._sql import Sql, bind_when
from storage.mapping import CHECKPOINTS, DECISIONS, RUNS, STEPS, WORKFLOWS, insert

__all__ = [
    "checkpoint",
    "checkpoint_outcomes",
    "checkpoints",
    "decisions",
    "open_for",
    "open_principals",
    "publish",
    "run",
    "runnable",
    "runs",
    "steps",
    "steps_of_runs",
    "workflow_version",
]

_FINAL = ", ".join(f"'{s.value}'" for s in RunStatus if s.final)
_PUBLISH = insert(WORKFLOWS, "ON CONFLICT (content_hash) DO NOTHING")
_WORKFLOW = WORKFLOWS.select("WHERE content_hash = :content_hash")
_RUN = RUNS.select("WHERE id = :run_id")
_CHECKPOINT = CHECKPOINTS.select("WHERE id = :cid")
_RUNNABLE = Sql(
    f"SELECT id FROM runs WHERE status NOT IN ({_FINAL}) AND paused_at IS NULL"
    " AND (json_array_length(pending) > 0 OR status IN ('queued', 'running'))"
    " AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at < :now)"
    " ORDER BY pk LIMIT :limit"
)


def publish(tx: Tx, version: WorkflowVersion) -> None:
    """Store a workflow version unless its hash is already stored."""
    tx.run(_PUBLISH, WORKFLOWS.params(version, tx.pg))


def workflow_version(tx: Tx, content_hash: str) -> WorkflowVersion:
    """A stored workflow version. Raises NotFound."""
    row = tx.query(_WORKFLOW, {"content_hash": content_hash}).fetchone()
    if row is None:
        raise NotFound(f"workflow version {content_hash} not found")
    return WORKFLOWS.load(row, tx.pg)


def run(tx: Tx, run_id: str) -> Run:
    """One run. Raises NotFound."""
    row = tx.query(_RUN, {"run_id": run_id}).fetchone()
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return RUNS.load(row, tx.pg)


def runs(
    tx: Tx,
    *,
    status: list[RunStatus] | None,
    workflow_id: str | None,
    limit: int,
    search: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[Run]:
    """Runs, newest first (``search``: part of the id, workflow id or requester; ``before``:
    the created_at and id of the previous page's last run)."""
    where = ["1 = 1"]
    params: dict[str, object] = {"limit": limit}
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["q"] = f"%{escaped}%"
        where.append(
            "(LOWER(id) LIKE :q ESCAPE '\\' OR LOWER(workflow_id) LIKE :q ESCAPE '\\'"
            " OR LOWER(requester) LIKE :q ESCAPE '\\')"
        )
    if before is not None:
        params["bt"], params["bid"] = bind_when(before[0], tx.pg), before[1]
        where.append(
            "(created_at < :bt OR (created_at = :bt AND pk < (SELECT pk FROM runs WHERE id = :bid)))"
        )
    if status is not None:
        names = [f"s{i}" for i in range(len(status))]
        params.update({n: s.value for n, s in zip(names, status, strict=True)})
        where.append(f"status IN ({', '.join(':' + n for n in names)})" if names else "1 = 0")
    if workflow_id is not None:
        where.append("workflow_id = :workflow_id")
        params["workflow_id"] = workflow_id
    sql = RUNS.select(f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, pk DESC LIMIT :limit")
    return RUNS.load_all(tx.query(sql, params).fetchall(), tx.pg)


def steps(tx: Tx, run_id: str) -> list[Step]:
    """A run's steps in start order (ties in insertion order)."""
    return STEPS.load_all(tx.query(SELECT_STEPS, {"run_id": run_id}).fetchall(), tx.pg)


_STEPS_OF_RUNS = STEPS.select(
    "WHERE run_id IN (SELECT id FROM runs WHERE created_at >= :since AND created_at <= :until)"
    " ORDER BY started_at, pk"
)
_STEPS_OF_WORKFLOW_RUNS = STEPS.select(
    "WHERE run_id IN (SELECT id FROM runs WHERE created_at >= :since AND created_at <= :until"
    " AND workflow_id = :workflow_id) ORDER BY started_at, pk"
)


def steps_of_runs(tx: Tx, since: datetime, until: datetime, workflow_id: str | None) -> list[Step]:
    """The steps of the runs created in ``[since, until]`` (of one workflow), in start order."""
    params: dict[str, object] = {"since": bind_when(since, tx.pg), "until": bind_when(until, tx.pg)}
    if workflow_id is None:
        return STEPS.load_all(tx.query(_STEPS_OF_RUNS, params).fetchall(), tx.pg)
    params["workflow_id"] = workflow_id
    return STEPS.load_all(tx.query(_STEPS_OF_WORKFLOW_RUNS, params).fetchall(), tx.pg)


def checkpoint_outcomes(tx: Tx, run_ids: list[str]) -> dict[str, set[CheckpointOutcome]]:
    """Run id -> the outcomes of its resolved checkpoints (through the run_id index)."""
    names = [f"r{i}" for i in range(len(run_ids))]
    sql = Sql(
        "SELECT DISTINCT run_id, outcome FROM checkpoints WHERE outcome IS NOT NULL"
        f" AND run_id IN ({', '.join(':' + n for n in names)})"
    )
    found: dict[str, set[CheckpointOutcome]] = {}
    for run_id, outcome in tx.query(sql, dict(zip(names, run_ids, strict=True))).fetchall():
        found.setdefault(str(run_id), set()).add(CheckpointOutcome(outcome))
    return found


def checkpoint(tx: Tx, checkpoint_id: str) -> Checkpoint:
    """One checkpoint. Raises NotFound."""
    row = tx.query(_CHECKPOINT, {"cid": checkpoint_id}).fetchone()
    if row is None:
        raise NotFound(f"checkpoint {checkpoint_id} not found")
    return CHECKPOINTS.load(row, tx.pg)


@cache
def _checkpoints_sql(by_run: bool, open_only: bool) -> Sql:
    where = ["1 = 1"]
    if by_run:
        where.append("run_id = :run_id")
    if open_only:
        where.append(f"status = '{CheckpointStatus.open.value}'")
    return CHECKPOINTS.select(f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, pk DESC LIMIT :limit")


def checkpoints(tx: Tx, *, run_id: str | None, open_only: bool, limit: int) -> list[Checkpoint]:
    """Checkpoints, newest first."""
    sql = _checkpoints_sql(run_id is not None, open_only)
    rows = tx.query(sql, {"run_id": run_id, "limit": limit}).fetchall()
    return CHECKPOINTS.load_all(rows, tx.pg)


def open_for(
    tx: Tx, principals: list[str], limit: int, before: tuple[datetime, str] | None
) -> list[Checkpoint]:
    """Open checkpoints assigned to any of ``principals``, newest first, through the assignee index."""
    if not principals:
        return []
    names = [f"p{i}" for i in range(len(principals))]
    params: dict[str, object] = dict(zip(names, principals, strict=True))
    params["limit"] = limit
    # driven by the assignee index: ``status || ''`` keeps SQLite from walking every open
    # checkpoint through the status index instead (one person's few among 100,000 open)
    where = [
        f"status || '' = '{CheckpointStatus.open.value}'",
        "id IN (SELECT checkpoint_id FROM checkpoint_assignees WHERE principal IN "
        f"({', '.join(':' + n for n in names)}))",
    ]
    if before is not None:
        where.append("(created_at < :before_at OR (created_at = :before_at AND id < :before_id))")
        params.update(before_at=bind_when(before[0], tx.pg), before_id=before[1])
    sql = CHECKPOINTS.select(f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT :limit")
    return CHECKPOINTS.load_all(tx.query(sql, params).fetchall(), tx.pg)


def open_principals(tx: Tx, kinds: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """Distinct ``(principal, team)`` of ``kinds`` among open checkpoints' assignees, ``team``
    being the checkpoint's Slack workspace (None: started outside Slack)."""
    if not kinds:
        return []
    # SQLite: a range on the principal index per kind ("group:" <= p < "group;", byte order),
    # not a LIKE (which it cannot answer from the index) joined to every open checkpoint.
    # PostgreSQL's collation may not order ":" before ";", so it keeps the prefix match, which
    # the index's pattern operator class answers as a range (migration 0010).
    if tx.pg:
        match = " OR ".join(f"a.principal LIKE :lo{i}" for i in range(len(kinds)))
    else:
        match = " OR ".join(f"(a.principal >= :lo{i} AND a.principal < :hi{i})" for i in range(len(kinds)))
    # ``status || ''`` keeps SQLite from walking every open checkpoint through the status index
    status = "c.status" if tx.pg else "c.status || ''"
    sql = Sql(
        f"SELECT DISTINCT a.principal, c.team FROM checkpoint_assignees a"
        f" JOIN checkpoints c ON c.id = a.checkpoint_id WHERE ({match})"
        f" AND {status} = '{CheckpointStatus.open.value}'"
    )
    params: dict[str, object] = {}
    for i, kind in enumerate(kinds):
        params[f"lo{i}"] = f"{kind}:%" if tx.pg else f"{kind}:"
        if not tx.pg:
            params[f"hi{i}"] = f"{kind};"
    found = {(str(r[0]), None if r[1] is None else str(r[1])) for r in tx.query(sql, params).fetchall()}
    return sorted(found, key=lambda pair: (pair[0], pair[1] or ""))


@cache
def _decisions_sql(by_run: bool, by_checkpoint: bool) -> Sql:
    where = ["1 = 1"]
    if by_run:
        where.append("run_id = :run_id")
    if by_checkpoint:
        where.append("checkpoint_id = :cid")
    return DECISIONS.select(f"WHERE {' AND '.join(where)} ORDER BY pk")


def decisions(tx: Tx, *, run_id: str | None, checkpoint_id: str | None) -> list[Decision]:
    """Resolving decisions in the order they were made."""
    sql = _decisions_sql(run_id is not None, checkpoint_id is not None)
    rows = tx.query(sql, {"run_id": run_id, "cid": checkpoint_id}).fetchall()
    return DECISIONS.load_all(rows, tx.pg)


def runnable(tx: Tx, now: datetime, limit: int) -> list[str]:
    """Ids of non-final runs with work to do and a free or expired lease, oldest first."""
    rows = tx.query(_RUNNABLE, {"now": bind_when(now, tx.pg), "limit": limit}).fetchall()
    return [str(r[0]) for r in rows]
