"""Read-only queries: workflow versions, runs, steps, checkpoints, decisions."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import NotFound
from engine.model import Checkpoint, CheckpointStatus, Decision, Run, RunStatus, Step, WorkflowVersion
from storage._db import Tx
from storage.mapping import CHECKPOINTS, DECISIONS, RUNS, STEPS, WORKFLOWS, to_model, to_models, to_values

__all__ = [
    "checkpoint",
    "checkpoints",
    "decisions",
    "publish",
    "run",
    "runnable",
    "runs",
    "steps",
    "workflow_version",
]

_wf = WORKFLOWS.table
_runs = RUNS.table
_steps = STEPS.table
_ckpt = CHECKPOINTS.table
_dec = DECISIONS.table
_FINAL = [s.value for s in RunStatus if s.final]
_PUBLISH = {
    True: postgresql.insert(_wf).on_conflict_do_nothing(index_elements=[_wf.c.content_hash]),
    False: sqlite.insert(_wf).on_conflict_do_nothing(index_elements=[_wf.c.content_hash]),
}
_RUNNABLE = (
    sa.select(_runs.c.id)
    .where(
        _runs.c.status.not_in(_FINAL),
        sa.or_(
            sa.func.json_array_length(_runs.c.pending) > 0,
            _runs.c.status.in_([RunStatus.queued.value, RunStatus.running.value]),
        ),
        sa.or_(
            _runs.c.lease_owner.is_(None),
            _runs.c.lease_expires_at.is_(None),
            _runs.c.lease_expires_at < sa.bindparam("now"),
        ),
    )
    .order_by(_runs.c.pk)
    .limit(sa.bindparam("limit"))
)


def publish(tx: Tx, version: WorkflowVersion) -> None:
    """Store a workflow version unless its hash is already stored."""
    tx.execute(_PUBLISH[tx.pg], to_values(version))


def workflow_version(tx: Tx, content_hash: str) -> WorkflowVersion:
    """A stored workflow version. Raises NotFound."""
    row = tx.execute(WORKFLOWS.select().where(_wf.c.content_hash == content_hash)).first()
    if row is None:
        raise NotFound(f"workflow version {content_hash} not found")
    return to_model(WorkflowVersion, row)


def run(tx: Tx, run_id: str) -> Run:
    """One run. Raises NotFound."""
    row = tx.execute(RUNS.select().where(_runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return to_model(Run, row)


def runs(tx: Tx, *, status: list[RunStatus] | None, workflow_id: str | None, limit: int) -> list[Run]:
    """Runs, newest first."""
    stmt = RUNS.select()
    if status is not None:
        stmt = stmt.where(_runs.c.status.in_([s.value for s in status]))
    if workflow_id is not None:
        stmt = stmt.where(_runs.c.workflow_id == workflow_id)
    stmt = stmt.order_by(_runs.c.created_at.desc(), _runs.c.pk.desc()).limit(limit)
    return to_models(Run, tx.execute(stmt).all())


def steps(tx: Tx, run_id: str) -> list[Step]:
    """A run's steps in start order (ties in insertion order)."""
    stmt = STEPS.select().where(_steps.c.run_id == run_id).order_by(_steps.c.started_at, _steps.c.pk)
    return to_models(Step, tx.execute(stmt).all())


def checkpoint(tx: Tx, checkpoint_id: str) -> Checkpoint:
    """One checkpoint. Raises NotFound."""
    row = tx.execute(CHECKPOINTS.select().where(_ckpt.c.id == checkpoint_id)).first()
    if row is None:
        raise NotFound(f"checkpoint {checkpoint_id} not found")
    return to_model(Checkpoint, row)


def checkpoints(tx: Tx, *, run_id: str | None, open_only: bool, limit: int) -> list[Checkpoint]:
    """Checkpoints, newest first."""
    stmt = CHECKPOINTS.select()
    if run_id is not None:
        stmt = stmt.where(_ckpt.c.run_id == run_id)
    if open_only:
        stmt = stmt.where(_ckpt.c.status == CheckpointStatus.open.value)
    stmt = stmt.order_by(_ckpt.c.created_at.desc(), _ckpt.c.pk.desc()).limit(limit)
    return to_models(Checkpoint, tx.execute(stmt).all())


def decisions(tx: Tx, *, run_id: str | None, checkpoint_id: str | None) -> list[Decision]:
    """Resolving decisions in the order they were made."""
    stmt = DECISIONS.select()
    if run_id is not None:
        stmt = stmt.where(_dec.c.run_id == run_id)
    if checkpoint_id is not None:
        stmt = stmt.where(_dec.c.checkpoint_id == checkpoint_id)
    return to_models(Decision, tx.execute(stmt.order_by(_dec.c.pk)).all())


def runnable(tx: Tx, now: datetime, limit: int) -> list[str]:
    """Ids of non-final runs with work to do and a free or expired lease, oldest first."""
    return list(tx.execute(_RUNNABLE, {"now": now, "limit": limit}).scalars())
