"""Response bodies built from stored rows (a checkpoint, its decision, a run), never from a request."""

from __future__ import annotations

from bot.api._models import Actor, CheckpointOut, DecisionOut, Pending, RunOut, RunResult
from engine.model import (
    Checkpoint,
    CheckpointOutcome,
    CheckpointStatus,
    Decision,
    ResolvedBy,
    Run,
    Step,
    StepStatus,
)
from engine.outcome import RunOutcome, load_outcome, run_outcome
from engine.ports import RunStore
from engine.shown import markup_text

__all__ = ["checkpoint_out", "decision_of", "decision_out", "pending_out", "run_out", "run_result"]


def _hash(hex_digest: str) -> str:
    return f"sha256:{hex_digest}" if hex_digest else ""


def decision_out(cp: Checkpoint, decision: Decision | None, run: Run | None = None) -> DecisionOut:
    """The decision object of a resolved checkpoint.

    A checkpoint closed with no decision (its run was cancelled, or ended on another branch)
    reads ``cancelled``, resolved by policy, with the run's reason as the comment.
    """
    if decision is None:
        return DecisionOut(
            checkpoint_id=cp.id,
            outcome="cancelled",
            action=None,
            data={},
            comment=run.reason if run is not None else None,
            actor=None,
            resolved_by="policy",
            rule="run_ended",
            channel="engine",
            decided_at=cp.resolved_at or cp.created_at,
            shown_hash=_hash(cp.shown_hash),
        )
    outcome = (cp.outcome or CheckpointOutcome.option).value
    human = decision.resolved_by is ResolvedBy.human
    return DecisionOut(
        checkpoint_id=cp.id,
        outcome=outcome,
        action=decision.action,
        data=dict(decision.data),
        comment=decision.comment,
        actor=Actor(id=decision.actor) if human else None,
        resolved_by=decision.resolved_by.value,
        rule=decision.rule,
        channel=decision.channel,
        decided_at=decision.created_at,
        shown_hash=_hash(decision.shown_hash),
    )


async def decision_of(store: RunStore, cp: Checkpoint) -> DecisionOut | None:
    """The decision object of ``cp`` when it is resolved, else None."""
    if cp.status is not CheckpointStatus.resolved:
        return None
    decisions = await store.list_decisions(checkpoint_id=cp.id)
    run = None if decisions else await store.get_run(cp.run_id)
    return decision_out(cp, decisions[-1] if decisions else None, run)


def checkpoint_out(cp: Checkpoint, decision: DecisionOut | None) -> CheckpointOut:
    """A checkpoint's public view."""
    return CheckpointOut(
        id=cp.id,
        run_id=cp.run_id,
        status=cp.status.value,
        kind=cp.kind,
        title=cp.title,
        prompt=markup_text(cp.prompt),  # what the person reads (data in it is inert)
        show=dict(cp.context),
        proposed=dict(cp.proposed),
        response_schema=dict(cp.response_schema),
        options=list(cp.options),
        assignees=list(cp.assignees),
        quorum=cp.quorum,
        approvals=len(cp.approvals),
        priority=cp.priority,
        due_at=cp.due_at,
        created_at=cp.created_at,
        version=cp.version,
        shown_hash=_hash(cp.shown_hash),
        outcome=cp.outcome.value if cp.outcome else None,
        decision=decision,
    )


def pending_out(cp: Checkpoint) -> Pending:
    """The 202 body of a checkpoint still open."""
    return Pending(checkpoint_id=cp.id, version=cp.version, approvals=len(cp.approvals))


def run_out(run: Run, open_checkpoints: list[str], outcome: RunOutcome | None) -> RunOut:
    """A run's public view."""
    return RunOut(
        id=run.id,
        workflow_id=run.workflow_id,
        workflow_version=run.workflow_hash,
        status=run.status.value,
        outcome=outcome.value if outcome else None,
        reason=run.reason,
        requester=run.requester,
        inputs=dict(run.inputs),
        open_checkpoints=open_checkpoints,
        created_at=run.created_at,
        updated_at=run.updated_at,
        finished_at=run.finished_at,
        paused_by=run.paused_by if run.paused_at is not None and not run.status.final else None,
        rerun_of=run.rerun_of,
    )


async def run_view(store: RunStore, run: Run) -> RunOut:
    """``run_out`` with the ids of its open checkpoints read from the store."""
    open_cps = await store.list_checkpoints(run_id=run.id, open_only=True)
    return run_out(run, [cp.id for cp in open_cps], await load_outcome(store, run))


async def run_result(store: RunStore, run: Run) -> RunResult:
    """A finished run with every succeeded node's data and its decisions."""
    steps: list[Step] = await store.list_steps(run.id)
    outputs = {
        s.node_id: dict(s.output.data)
        for s in steps
        if s.output is not None and s.status is StepStatus.succeeded
    }
    decisions = await store.list_decisions(run_id=run.id)
    by_checkpoint = {cp.id: cp for cp in await store.list_checkpoints(run_id=run.id)}
    views = [
        decision_out(by_checkpoint[d.checkpoint_id], d) for d in decisions if d.checkpoint_id in by_checkpoint
    ]
    outcome = run_outcome(run, by_checkpoint.values())
    return RunResult(run=run_out(run, [], outcome), outputs=outputs, decisions=views)
