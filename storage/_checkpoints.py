"""The checkpoint compare-and-set: one winner, every loser told who won and when."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from engine.errors import Conflict, NotFound
from engine.model import Checkpoint, CheckpointOutcome, CheckpointStatus, Run, RunStatus, Step
from engine.ports import CheckpointUpdate, Claimed, conflict_message, merge_pending
from storage import _audit, _runs
from storage._db import Tx
from storage._sql import Sql, bind_when, dumps_json, read_when
from storage._writes import Writes
from storage.mapping import CHECKPOINTS, RUNS, STEPS

__all__ = ["load", "update"]

# Lock order everywhere: run row, then checkpoint rows, then the audit head. Locking the run
# first (found through the checkpoint) keeps a resolve and a cancel of the same run from
# deadlocking on PostgreSQL.
_RUN_OF = "WHERE id = (SELECT run_id FROM checkpoints WHERE id = :cid)"
_LOCK_RUN_OF_CHECKPOINT = RUNS.select(_RUN_OF, lock=True)
_RUN_OF_CHECKPOINT = RUNS.select(_RUN_OF)
_STEPS_OF_CHECKPOINT = STEPS.select(
    "WHERE run_id = (SELECT run_id FROM checkpoints WHERE id = :cid) ORDER BY started_at, pk"
)
_CHECKPOINT = CHECKPOINTS.select("WHERE id = :cid")
_LOSER_VIEW = Sql(
    "SELECT c.status, c.outcome, c.version, c.resolved_at, d.actor, d.action, d.created_at"
    " FROM checkpoints c LEFT OUTER JOIN decisions d ON d.checkpoint_id = c.id WHERE c.id = :cid"
)


@cache
def _compare_and_set(names: tuple[str, ...]) -> Sql:
    sets = ", ".join(["version = version + 1", *(f"{n} = :{n}" for n in names)])
    return Sql(
        f"UPDATE checkpoints SET {sets} WHERE id = :cid AND status = 'open' AND version = :expected"
        f" RETURNING {CHECKPOINTS.columns}"
    )


def load(tx: Tx, checkpoint_id: str) -> tuple[Checkpoint, Run, list[Step]]:
    """A checkpoint, its run and the run's steps from one snapshot. Raises NotFound."""
    tx.snapshot()
    params = {"cid": checkpoint_id}
    found = tx.query(_CHECKPOINT, params)
    run = tx.query(_RUN_OF_CHECKPOINT, params)
    steps = tx.query(_STEPS_OF_CHECKPOINT, params)
    cp_row, run_row = found.fetchone(), run.fetchone()
    if cp_row is None or run_row is None:
        raise NotFound(f"checkpoint {checkpoint_id} not found")
    return CHECKPOINTS.load(cp_row, tx.pg), RUNS.load(run_row, tx.pg), STEPS.load_all(steps.fetchall(), tx.pg)


def update(tx: Tx, upd: CheckpointUpdate) -> Checkpoint:
    """Compare-and-set on ``(id, status open, version)``; see ``RunStore.update_checkpoint``."""
    found = tx.query(_LOCK_RUN_OF_CHECKPOINT, {"cid": upd.checkpoint_id})
    values = _checkpoint_values(upd, tx.pg)
    cas = _compare_and_set(tuple(values))
    won = tx.query(cas, {**values, "cid": upd.checkpoint_id, "expected": upd.expected_version})
    head = _audit.lock_head(tx, upd.audit)
    row = found.fetchone()
    if row is None:
        raise NotFound(f"checkpoint {upd.checkpoint_id} not found")
    run = RUNS.load(row, tx.pg)
    won_row = won.fetchone()
    if won_row is None:
        raise _conflict(tx, upd)
    if run.status.final:  # rolls the compare-and-set back: nothing is decided on an ended run
        raise Conflict(f"run {run.id} already ended ({run.status.value}); nothing is decided any more")
    checkpoint = CHECKPOINTS.load(won_row, tx.pg)
    changes: dict[str, Any] = {}
    if upd.pending_add:
        changes["pending"] = merge_pending(run.pending, [], upd.pending_add)
    if upd.rejected and not run.rejected:
        changes["rejected"] = True
    if upd.resolve and run.status is RunStatus.waiting:
        changes["status"] = RunStatus.queued
    if changes:
        changes["updated_at"] = upd.at
    writes = Writes(tx.pg)
    if upd.resolve and upd.decision is not None:
        writes.decision(upd.decision)
    if upd.resolve:
        writes.notify(run.id)
    if upd.step is not None:
        writes.steps([upd.step])
    if upd.assignees is not None:
        writes.reindex(checkpoint, upd.assignees)
    if changes:
        writes.run(run.model_copy(update=changes))
    writes.deliveries(upd.deliveries)
    writes.audit(upd.audit, head.fetchone() if head is not None else None)
    writes.send(tx)
    return checkpoint


def update_and_claim(
    tx: Tx, upd: CheckpointUpdate, owner: str, ttl: timedelta
) -> tuple[Checkpoint, Claimed | None]:
    """``update``, then ``_runs.claim`` of the checkpoint's run at ``upd.at``, in ``tx``."""
    checkpoint = update(tx, upd)
    return checkpoint, _runs.claim(tx, checkpoint.run_id, owner, upd.at, ttl)


def _checkpoint_values(upd: CheckpointUpdate, pg: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if upd.resolve:
        values["status"] = CheckpointStatus.resolved.value
        values["outcome"] = upd.outcome.value if upd.outcome is not None else None
        values["resolved_at"] = bind_when(upd.at, pg)
    if upd.approvals is not None:
        values["approvals"] = dumps_json(upd.approvals)
    if upd.assignees is not None:
        values["assignees"] = dumps_json(upd.assignees)
    if upd.clear_due:
        values["due_at"] = None
    elif upd.due_at is not None:
        values["due_at"] = bind_when(upd.due_at, pg)
    if upd.escalation_level is not None:
        values["escalation_level"] = upd.escalation_level
    if upd.priority is not None:
        values["priority"] = upd.priority.value
    if upd.proposed is not None:
        values["proposed"] = dumps_json(upd.proposed)
    if upd.editors is not None:
        values["editors"] = dumps_json(upd.editors)
    if upd.shown_hash is not None:
        values["shown_hash"] = upd.shown_hash
    if upd.content_version is not None:
        values["content_version"] = upd.content_version
    return values


def _conflict(tx: Tx, upd: CheckpointUpdate) -> Conflict:
    status, outcome_value, version, resolved_at, actor, action, created_at = tx.query(
        _LOSER_VIEW, {"cid": upd.checkpoint_id}
    ).fetchone()
    if status == CheckpointStatus.resolved.value:
        outcome = CheckpointOutcome(outcome_value) if outcome_value is not None else None
        if actor is not None:
            at = read_when(created_at, tx.pg)
            return Conflict(
                conflict_message(upd.checkpoint_id, outcome, actor, at, action),
                winner=actor,
                at=at,
                action=action,
            )
        resolved = read_when(resolved_at, tx.pg)
        return Conflict(
            conflict_message(upd.checkpoint_id, outcome, None, resolved, None),
            at=resolved,
            action=outcome.value if outcome is not None else None,
        )
    return Conflict(
        f"checkpoint {upd.checkpoint_id} changed concurrently "
        f"(version {version}, expected {upd.expected_version}): reload and try again"
    )
