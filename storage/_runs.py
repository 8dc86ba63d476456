"""Runs and leases: create, claim, renew, commit a step, cancel (one transaction each)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engine.errors import Conflict, LeaseLost, NotFound
from engine.model import CheckpointOutcome, CheckpointStatus, Delivery, Run, RunStatus, Step
from engine.ports import AuditDraft, Claimed, Lease, RunChange, merge_pending
from storage import _audit, _listen
from storage._db import Tx
from storage._sql import Sql, bind_when
from storage._writes import (
    CLOSE_CHECKPOINTS,
    INSERT_DELIVERY,
    MUTABLE_AND_ID,
    UPDATE_RUN,
    UPSERT_STEP,
    Writes,
)
from storage.mapping import DELIVERIES, RUNS, STEPS, insert
from storage.tables import AUDIT_HEAD_ID

__all__ = [
    "SELECT_STEPS",
    "cancel",
    "claim",
    "claim_lease",
    "commit",
    "create",
    "insert_deliveries",
    "lock_run",
    "pause",
    "renew",
    "reopen",
    "reruns_of",
    "save_run",
    "upsert_step",
]

_FINAL = ", ".join(f"'{s.value}'" for s in RunStatus if s.final)
_LOCK_RUN = RUNS.select("WHERE id = :run_id", lock=True)
_INSERT_RUN = insert(RUNS, "ON CONFLICT (id) DO NOTHING RETURNING pk")
SELECT_STEPS = STEPS.select("WHERE run_id = :run_id ORDER BY started_at, pk")
# the lease rules of RunStore.claim_run in one statement: no read-modify-write round trip
_CLAIM = Sql(
    "UPDATE runs SET lease_owner = :owner, lease_epoch = lease_epoch + 1,"
    " lease_expires_at = :expires, updated_at = :now,"
    " status = CASE WHEN status = 'queued' THEN 'running' ELSE status END"
    f" WHERE id = :run_id AND status NOT IN ({_FINAL}) AND paused_at IS NULL"
    " AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at < :now)"
    f" RETURNING {RUNS.columns}"
)
_RERUNS = RUNS.select("WHERE rerun_of = :run_id ORDER BY pk")
_RUN_EXISTS = Sql("SELECT 1 FROM runs WHERE id = :run_id")
# PostgreSQL, a step commit with audit events: the run row and the audit head locked by one
# statement, read in the first round trip. A join's FOR UPDATE locks the rows of both in the
# order its OF list names them (without one, in FROM order): the run row first, as everywhere
# (tests/contract/test_step_commit.py checks it)
_LOCK_RUN_AND_HEAD = Sql(
    f"SELECT {RUNS.columns_of('r')}, h.seq, h.hash FROM runs r, audit_head h"
    f" WHERE r.id = :run_id AND h.id = {AUDIT_HEAD_ID} FOR UPDATE OF r, h"
)
_RUN_WIDTH = len(RUNS.names)


def lock_run(tx: Tx, run_id: str) -> Run:
    """Read a run for a read-modify-write (``FOR UPDATE`` on PostgreSQL). Raises NotFound."""
    row = tx.query(_LOCK_RUN, {"run_id": run_id}).fetchone()
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return RUNS.load(row, tx.pg)


def save_run(tx: Tx, run: Run, changes: dict[str, Any]) -> Run:
    """Write ``changes`` (model field -> value) to a locked run and return the updated model."""
    updated = run.model_copy(update=changes)
    tx.run(UPDATE_RUN, RUNS.params(updated, tx.pg, MUTABLE_AND_ID))
    return updated


def upsert_step(tx: Tx, step: Step) -> None:
    """Insert a step or replace everything but its identity and run."""
    tx.run(UPSERT_STEP, STEPS.params(step, tx.pg))


def insert_deliveries(tx: Tx, deliveries: list[Delivery]) -> None:
    """Queue outbox rows."""
    if deliveries:
        tx.many(INSERT_DELIVERY, [DELIVERIES.params(d, tx.pg) for d in deliveries])


def create(tx: Tx, run: Run, audit: list[AuditDraft], steps: list[Step]) -> None:
    """Insert a new run and the steps it starts with. Raises Conflict when the id exists."""
    inserted = tx.query(_INSERT_RUN, RUNS.params(run, tx.pg))
    head = _audit.lock_head(tx, audit)
    if inserted.fetchone() is None:
        raise Conflict(f"run {run.id} already exists")
    writes = Writes(tx.pg)
    writes.steps(steps)
    writes.audit(audit, head.fetchone() if head is not None else None)
    writes.send(tx)


def reopen(tx: Tx, run_id: str, at: datetime, steps: list[Step], audit: list[AuditDraft]) -> Run:
    """Queue a failed run again, its retried steps pending. Raises Conflict or NotFound."""
    run = lock_run(tx, run_id)
    if run.status is not RunStatus.failed:
        raise Conflict(f"run {run_id} is {run.status.value}, not failed")
    head = _audit.lock_head(tx, audit)
    for step in steps:
        upsert_step(tx, step)
    changes: dict[str, Any] = {
        "status": RunStatus.queued,
        "reason": None,
        "finished_at": None,
        "updated_at": at,
        "pending": [s.node_id for s in steps],
        "lease_owner": None,
        "lease_expires_at": None,
    }
    updated = save_run(tx, run, changes)
    _listen.notify(tx, run_id)
    _audit.append(tx, audit, head)
    return updated


def reruns_of(tx: Tx, run_id: str) -> list[Run]:
    """The runs whose ``rerun_of`` is ``run_id``, oldest first."""
    return RUNS.load_all(tx.query(_RERUNS, {"run_id": run_id}).fetchall(), tx.pg)


def claim_lease(tx: Tx, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Lease | None:
    """Take a free or expired lease of a non-final run, bumping the fencing epoch."""
    run = _claimed_run(tx, tx.query(_CLAIM, _claim_params(tx, run_id, owner, now, ttl)), run_id)
    return None if run is None else _lease_of(run, owner, now + ttl)


def claim(tx: Tx, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Claimed | None:
    """``claim_lease`` that also reads the run and its steps (one round trip on PostgreSQL)."""
    claimed = tx.query(_CLAIM, _claim_params(tx, run_id, owner, now, ttl))
    steps = tx.query(SELECT_STEPS, {"run_id": run_id})
    run = _claimed_run(tx, claimed, run_id)
    if run is None:
        return None
    return Claimed(
        lease=_lease_of(run, owner, now + ttl), run=run, steps=STEPS.load_all(steps.fetchall(), tx.pg)
    )


def _claim_params(tx: Tx, run_id: str, owner: str, now: datetime, ttl: timedelta) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "owner": owner,
        "now": bind_when(now, tx.pg),
        "expires": bind_when(now + ttl, tx.pg),
    }


def _claimed_run(tx: Tx, cursor: Any, run_id: str) -> Run | None:
    row = cursor.fetchone()
    if row is not None:
        return RUNS.load(row, tx.pg)
    if tx.query(_RUN_EXISTS, {"run_id": run_id}).fetchone() is None:
        raise NotFound(f"run {run_id} not found")
    return None


def _lease_of(run: Run, owner: str, expires: datetime) -> Lease:
    return Lease(run_id=run.id, owner=owner, epoch=run.lease_epoch, expires_at=expires)


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
    if tx.pg and change.audit:
        locked = tx.query(_LOCK_RUN_AND_HEAD, {"run_id": lease.run_id}).fetchone()
        if locked is not None:
            run = RUNS.load(locked[:_RUN_WIDTH], tx.pg)
            _check_lease(run, lease)
            return _write(tx, run, change, locked[_RUN_WIDTH:])
        # no head row yet (an empty chain) or no such run: lock them one by one
    locked = tx.query(_LOCK_RUN, {"run_id": lease.run_id})
    head = _audit.lock_head(tx, change.audit)
    row = locked.fetchone()
    if row is None:
        raise NotFound(f"run {lease.run_id} not found")
    run = RUNS.load(row, tx.pg)
    _check_lease(run, lease)
    return _write(tx, run, change, head.fetchone() if head is not None else None)


def _run_changes(run: Run, change: RunChange) -> dict[str, Any]:
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
    return changes


def _write(tx: Tx, run: Run, change: RunChange, head: Any) -> Run:
    """Write one step's results to a run locked and checked (``head``: the audit head's row)."""
    updated = run.model_copy(update=_run_changes(run, change))
    writes = Writes(tx.pg)
    writes.steps(change.steps)
    if change.checkpoints:
        writes.checkpoints(change.checkpoints)
        writes.notify(run.id)  # other processes plan its timers (bot/scheduler.py)
    if change.finished:
        writes.close_checkpoints(run.id, change.at)  # a run that ended leaves nothing to decide
        writes.notify(run.id)
    writes.run(updated)
    writes.deliveries(change.deliveries)
    writes.audit(change.audit, head)
    writes.send(tx)
    return updated


def _close_checkpoints(tx: Tx, run_id: str, at: datetime) -> None:
    tx.run(
        CLOSE_CHECKPOINTS,
        {
            "resolved": CheckpointStatus.resolved.value,
            "cancelled": CheckpointOutcome.cancelled.value,
            "at": bind_when(at, tx.pg),
            "run_id": run_id,
            "open": CheckpointStatus.open.value,
        },
    )


def cancel(
    tx: Tx, run_id: str, at: datetime, reason: str, audit: list[AuditDraft], deliveries: list[Delivery]
) -> Run:
    """Cancel a non-final run, close its open checkpoints and fence its lease holder."""
    run = lock_run(tx, run_id)
    if run.status.final:
        raise Conflict(f"run {run_id} already {run.status.value}")
    _close_checkpoints(tx, run_id, at)
    insert_deliveries(tx, deliveries)
    _listen.notify(tx, run_id)
    head = _audit.lock_head(tx, audit)
    changes: dict[str, Any] = {
        "status": RunStatus.cancelled,
        "reason": reason,
        "finished_at": at,
        "updated_at": at,
        "pending": [],
        "lease_owner": None,
        "lease_expires_at": None,
        "lease_epoch": run.lease_epoch + 1,
        "paused_at": None,
        "paused_by": None,
    }
    updated = save_run(tx, run, changes)
    _audit.append(tx, audit, head)
    return updated


def pause(tx: Tx, run_id: str, at: datetime, paused_by: str | None, audit: list[AuditDraft]) -> Run:
    """Pause (``paused_by`` set) or resume (None) a non-final run. Raises Conflict or NotFound.

    The lease holder is not fenced: it finishes the node it is running, commits it, and then
    sees the pause on the run its commit returns.
    """
    run = lock_run(tx, run_id)
    if run.status.final:
        raise Conflict(f"run {run_id} already ended ({run.status.value})")
    if (run.paused_at is not None) == (paused_by is not None):
        state = f"paused by {run.paused_by}" if run.paused_at is not None else "not paused"
        raise Conflict(f"run {run_id} is {state}")
    head = _audit.lock_head(tx, audit)
    changes: dict[str, Any] = {
        "paused_at": at if paused_by is not None else None,
        "paused_by": paused_by,
        "updated_at": at,
    }
    updated = save_run(tx, run, changes)
    _listen.notify(tx, run_id)
    _audit.append(tx, audit, head)
    return updated
