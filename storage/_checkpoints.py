"""The checkpoint compare-and-set: one winner, every loser told who won and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import Conflict, NotFound
from engine.model import Checkpoint, CheckpointOutcome, CheckpointStatus, Run, RunStatus
from engine.ports import CheckpointUpdate
from storage import _audit, _runs
from storage._db import Tx
from storage.mapping import CHECKPOINTS, DECISIONS, RUNS, to_model, to_values

__all__ = ["conflict_message", "update"]

_ckpt = CHECKPOINTS.table
_dec = DECISIONS.table
_runs_t = RUNS.table

# Lock order everywhere: run row, then checkpoint rows, then the audit head. Locking the run
# first (found through the checkpoint) keeps a resolve and a cancel of the same run from
# deadlocking on PostgreSQL.
_RUN_OF_CHECKPOINT = RUNS.select().where(
    _runs_t.c.id == sa.select(_ckpt.c.run_id).where(_ckpt.c.id == sa.bindparam("cid")).scalar_subquery()
)
_LOCK_RUN_OF_CHECKPOINT = _RUN_OF_CHECKPOINT.with_for_update(of=_runs_t)
_INSERT_DECISION = sa.insert(_dec)
_LOSER_VIEW = (
    sa.select(
        _ckpt.c.status,
        _ckpt.c.outcome,
        _ckpt.c.version,
        _ckpt.c.resolved_at,
        _dec.c.actor,
        _dec.c.action,
        _dec.c.created_at,
    )
    .select_from(_ckpt.outerjoin(_dec, _dec.c.checkpoint_id == _ckpt.c.id))
    .where(_ckpt.c.id == sa.bindparam("cid"))
)


def update(tx: Tx, upd: CheckpointUpdate) -> Checkpoint:
    """Compare-and-set on ``(id, status open, version)``; see ``RunStore.update_checkpoint``."""
    found = tx.execute(_LOCK_RUN_OF_CHECKPOINT if tx.pg else _RUN_OF_CHECKPOINT, {"cid": upd.checkpoint_id})
    row = found.first()
    if row is None:
        raise NotFound(f"checkpoint {upd.checkpoint_id} not found")
    run = to_model(Run, row)
    stmt = (
        sa.update(_ckpt)
        .where(
            _ckpt.c.id == upd.checkpoint_id,
            _ckpt.c.status == CheckpointStatus.open.value,
            _ckpt.c.version == upd.expected_version,
        )
        .values(_checkpoint_values(upd))
        .returning(*CHECKPOINTS.columns)
    )
    won = tx.execute(stmt).first()
    if won is None:
        raise _conflict(tx, upd)
    checkpoint = to_model(Checkpoint, won)
    if upd.resolve and upd.decision is not None:
        tx.execute(_INSERT_DECISION, to_values(upd.decision))
    if upd.step is not None:
        _runs.upsert_step(tx, upd.step)
    changes: dict[str, Any] = {}
    if upd.pending_add:
        changes["pending"] = _runs.merge_pending(run.pending, [], upd.pending_add)
    if upd.rejected and not run.rejected:
        changes["rejected"] = True
    if upd.resolve and run.status is RunStatus.waiting:
        changes["status"] = RunStatus.queued
    if changes:
        changes["updated_at"] = upd.at
        _runs.save_run(tx, run, changes)
    _runs.insert_deliveries(tx, upd.deliveries)
    _audit.append(tx, upd.audit)
    return checkpoint


def _checkpoint_values(upd: CheckpointUpdate) -> dict[str, Any]:
    values: dict[str, Any] = {"version": _ckpt.c.version + 1}
    if upd.resolve:
        values["status"] = CheckpointStatus.resolved.value
        values["outcome"] = upd.outcome.value if upd.outcome is not None else None
        values["resolved_at"] = upd.at
    if upd.approvals is not None:
        values["approvals"] = upd.approvals
    if upd.assignees is not None:
        values["assignees"] = upd.assignees
    if upd.clear_due:
        values["due_at"] = None
    elif upd.due_at is not None:
        values["due_at"] = upd.due_at
    if upd.escalation_level is not None:
        values["escalation_level"] = upd.escalation_level
    if upd.priority is not None:
        values["priority"] = upd.priority.value
    return values


def _conflict(tx: Tx, upd: CheckpointUpdate) -> Conflict:
    seen = tx.execute(_LOSER_VIEW, {"cid": upd.checkpoint_id}).one()
    if seen.status == CheckpointStatus.resolved.value:
        outcome = CheckpointOutcome(seen.outcome) if seen.outcome is not None else None
        if seen.actor is not None:
            return Conflict(
                conflict_message(upd.checkpoint_id, outcome, seen.actor, seen.created_at, seen.action),
                winner=seen.actor,
                at=seen.created_at,
                action=seen.action,
            )
        return Conflict(
            conflict_message(upd.checkpoint_id, outcome, None, seen.resolved_at, None),
            at=seen.resolved_at,
            action=outcome.value if outcome is not None else None,
        )
    return Conflict(
        f"checkpoint {upd.checkpoint_id} changed concurrently "
        f"(version {seen.version}, expected {upd.expected_version}): reload and try again"
    )


def conflict_message(
    checkpoint_id: str,
    outcome: CheckpointOutcome | None,
    actor: str | None,
    at: datetime | None,
    action: str | None,
) -> str:
    """``checkpoint X already approved by U123 at 2026-01-01 09:00:00 UTC``."""
    if outcome is None or outcome is CheckpointOutcome.option:
        what = f"resolved ({action})" if action else "resolved"
    else:
        what = outcome.value.replace("_", " ")
    text = f"checkpoint {checkpoint_id} already {what}"
    if actor is not None:
        text += f" by {actor}"
    if at is not None:
        text += f" at {at.strftime('%Y-%m-%d %H:%M:%S')} UTC"
    return text
