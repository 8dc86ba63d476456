"""Observer events built from the engine's models (private: see ``engine.observers``)."""

from __future__ import annotations

from datetime import datetime

from engine.model import Checkpoint, Decision, Run, Step
from engine.observers import CheckpointDecided, RunFinished, StepFinished

__all__ = ["decided", "run_finished", "step_finished"]


def step_finished(workflow: str, step: Step, at: datetime) -> StepFinished:
    """The event of a step that ended (succeeded or failed)."""
    model = (step.input or {}).get("model")
    return StepFinished(
        at=step.ended_at or at,
        run_id=step.run_id,
        workflow=workflow,
        step_id=step.id,
        node_id=step.node_id,
        node_type=step.node_type,
        status=step.status.value,
        attempt=step.attempt,
        started_at=step.started_at,
        model=model if isinstance(model, str) else None,
        input_tokens=step.input_tokens,
        output_tokens=step.output_tokens,
        cost_usd=step.cost_usd,
        error=step.error,
    )


def run_finished(run: Run) -> RunFinished:
    """The event of a run that ended."""
    return RunFinished(
        at=run.updated_at,
        run_id=run.id,
        workflow=run.workflow_id,
        outcome=run.status.value,
        started_at=run.created_at,
    )


def decided(run: Run, cp: Checkpoint, decision: Decision) -> CheckpointDecided:
    """The event of a checkpoint resolved by ``decision``."""
    return CheckpointDecided(
        at=decision.created_at,
        run_id=run.id,
        workflow=run.workflow_id,
        checkpoint_id=cp.id,
        node_id=cp.node_id,
        action=decision.action,
        resolved_by=decision.resolved_by.value,
        opened_at=cp.created_at,
    )
