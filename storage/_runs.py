"""Runs and leases: create, claim, renew, commit a step, cancel (one transaction each)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import Conflict, LeaseLost, NotFound
from engine.model import CheckpointOutcome, CheckpointStatus, Delivery, Run, RunStatus, Step
from engine.ports import AuditDraft, Lease, RunChange
from storage import _audit
from storage._db import Tx
from storage.mapping import CHECKPOINTS, DELIVERIES, RUNS, STEPS, to_model, to_values

__all__ = [
    "cancel",
    "claim",
    "commit",
    "create",
    "insert_deliveries",
    "lock_run",
    "merge_pending",
    "renew",
    "save_run",
    "upsert_step",
]

_runs = RUNS.table
_steps = STEPS.table
_SELECT_RUN = RUNS.select().where(_runs.c.id == sa.bindparam("run_id"))
_LOCK_RUN = _SELECT_RUN.with_for_update()
_INSERT_RUN = sa.insert(_runs)
_INSERT_CHECKPOINTS = sa.insert(CHECKPOINTS.table)
_INSERT_DELIVERIES = sa.insert(DELIVERIES.table)


def _upsert(dialect: Any) -> Any:
    stmt = dialect.insert(_steps)
    keep = {"id", "pk", "run_id"}
    return stmt.on_conflict_do_update(
        index_elements=[_steps.c.id],
        set_={c.name: stmt.excluded[c.name] for c in STEPS.columns if c.name not in keep},
    )


_UPSERT_STEP = {True: _upsert(postgresql), False: _upsert(sqlite)}


def lock_run(tx: Tx, run_id: str) -> Run:
    """Read a run for a read-modify-write (``FOR UPDATE`` on PostgreSQL). Raises NotFound."""
    row = tx.execute(_LOCK_RUN if tx.pg else _SELECT_RUN, {"run_id": run_id}).first()
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return to_model(Run, row)


# One prebuilt statement for every run change: no statement building on the hot path.
_MUTABLE = ["status", "pending", "reason", "rejected", "updated_at", "finished_at"]
_MUTABLE += ["lease_owner", "lease_epoch", "lease_expires_at"]
_UPDATE_RUN = (
    sa.update(_runs)
    .where(_runs.c.id == sa.bindparam("run_id"))
    .values({name: sa.bindparam(f"new_{name}", type_=_runs.c[name].type) for name in _MUTABLE})
)


def save_run(tx: Tx, run: Run, changes: dict[str, Any]) -> Run:
    """Write ``changes`` (model field -> value) to a locked run and return the updated model."""
    updated = run.model_copy(update=changes)
    params: dict[str, Any] = {"run_id": run.id}
    for name in _MUTABLE:
        value = getattr(updated, name)
        params[f"new_{name}"] = value.value if isinstance(value, Enum) else value
    tx.execute(_UPDATE_RUN, params)
    return updated


def merge_pending(pending: list[str], remove: list[str], add: list[str]) -> list[str]:
    """Remove then add node ids, keeping order and never repeating one."""
    gone = set(remove)
    out = [p for p in pending if p not in gone]
    for node in add:
        if node not in out:
            out.append(node)
    return out


def upsert_step(tx: Tx, step: Step) -> None:
    """Insert a step or replace everything but its identity and run."""
    tx.execute(_UPSERT_STEP[tx.pg], to_values(step))


def insert_deliveries(tx: Tx, deliveries: list[Delivery]) -> None:
    """Queue outbox rows."""
    if deliveries:
        tx.execute(_INSERT_DELIVERIES, [to_values(d) for d in deliveries])


def create(tx: Tx, run: Run, audit: list[AuditDraft]) -> None:
    """Insert a new run. Raises Conflict when the id exists."""
    if tx.execute(sa.select(_runs.c.pk).where(_runs.c.id == run.id)).first() is not None:
        raise Conflict(f"run {run.id} already exists")
    tx.execute(_INSERT_RUN, to_values(run))
    _audit.append(tx, audit)


def _lease_free(run: Run, now: datetime) -> bool:
    return run.lease_owner is None or run.lease_expires_at is None or run.lease_expires_at < now


def claim(tx: Tx, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Lease | None:
    """Take a free or expired lease of a non-final run, bumping the fencing epoch."""
    run = lock_run(tx, run_id)
    if run.status.final or not _lease_free(run, now):
        return None
    expires = now + ttl
    changes: dict[str, Any] = {
        "lease_owner": owner,
        "lease_epoch": run.lease_epoch + 1,
        "lease_expires_at": expires,
        "updated_at": now,
    }
    if run.status is RunStatus.queued:
        changes["status"] = RunStatus.running
    save_run(tx, run, changes)
    return Lease(run_id=run_id, owner=owner, epoch=run.lease_epoch + 1, expires_at=expires)


def _check_lease(run: Run, lease: Lease) -> None:
    if run.lease_owner != lease.owner or run.lease_epoch != lease.epoch:
        holder = run.lease_owner or "nobody"
        raise LeaseLost(
            f"run {run.id}: lease of {lease.owner} (epoch {lease.epoch}) is lost; "
            f"now held by {holder} (epoch {run.lease_epoch})"
        )


def renew(tx: Tx, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
    """Extend a lease that is still ours. Raises LeaseLost."""
    run = lock_run(tx, lease.run_id)
    _check_lease(run, lease)
    expires = now + ttl
    save_run(tx, run, {"lease_expires_at": expires})
    return lease.model_copy(update={"expires_at": expires})


def commit(tx: Tx, lease: Lease, change: RunChange) -> Run:
    """Apply one step's results under a fenced lease. Raises LeaseLost."""
    run = lock_run(tx, lease.run_id)
    _check_lease(run, lease)
    for step in change.steps:
        upsert_step(tx, step)
    if change.checkpoints:
        tx.execute(_INSERT_CHECKPOINTS, [to_values(c) for c in change.checkpoints])
    changes: dict[str, Any] = {"updated_at": change.at, "rejected": run.rejected or change.rejected}
    if change.pending_remove or change.pending_add:
        changes["pending"] = merge_pending(run.pending, change.pending_remove, change.pending_add)
    if change.status is not None:
        changes["status"] = change.status
    if change.reason is not None:
        changes["reason"] = change.reason
    if change.finished:
        changes["finished_at"] = change.at
    if change.release:
        changes.update(lease_owner=None, lease_expires_at=None)
    updated = save_run(tx, run, changes)
    insert_deliveries(tx, change.deliveries)
    _audit.append(tx, change.audit)
    return updated


def cancel(tx: Tx, run_id: str, at: datetime, reason: str, audit: list[AuditDraft]) -> Run:
    """Cancel a non-final run, close its open checkpoints and fence its lease holder."""
    run = lock_run(tx, run_id)
    if run.status.final:
        raise Conflict(f"run {run_id} already {run.status.value}")
    checkpoints = CHECKPOINTS.table
    tx.execute(
        sa.update(checkpoints)
        .where(checkpoints.c.run_id == run_id, checkpoints.c.status == CheckpointStatus.open.value)
        .values(
            status=CheckpointStatus.resolved.value,
            outcome=CheckpointOutcome.cancelled.value,
            resolved_at=at,
            version=checkpoints.c.version + 1,
        )
    )
    changes: dict[str, Any] = {
        "status": RunStatus.cancelled,
        "reason": reason,
        "finished_at": at,
        "updated_at": at,
        "pending": [],
        "lease_owner": None,
        "lease_expires_at": None,
        "lease_epoch": run.lease_epoch + 1,
    }
    updated = save_run(tx, run, changes)
    _audit.append(tx, audit)
    return updated
