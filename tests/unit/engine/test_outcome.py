"""A run's outcome is derived from its checkpoints, apart from its technical status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.model import Checkpoint, CheckpointOutcome, CheckpointStatus, Run, RunStatus
from engine.outcome import RunOutcome, run_outcome

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _run(status: RunStatus) -> Run:
    return Run(
        id="run_1",
        workflow_id="refund",
        workflow_hash="h",
        status=status,
        inputs={},
        requester="alice",
        created_at=AT,
        updated_at=AT,
    )


def _cp(outcome: CheckpointOutcome | None, n: int = 1, run_id: str = "run_1") -> Checkpoint:
    status = CheckpointStatus.open if outcome is None else CheckpointStatus.resolved
    return Checkpoint(
        id=f"cp_{n}", run_id=run_id, node_id=f"n{n}", status=status, outcome=outcome, created_at=AT
    )


@pytest.mark.parametrize(
    ("status", "outcomes", "expected"),
    [
        (RunStatus.succeeded, [CheckpointOutcome.rejected], RunOutcome.declined),
        (RunStatus.rejected, [CheckpointOutcome.rejected], RunOutcome.declined),
        (RunStatus.rejected, [CheckpointOutcome.timed_out], RunOutcome.timed_out),
        (RunStatus.succeeded, [CheckpointOutcome.approved], RunOutcome.approved),
        (RunStatus.succeeded, [CheckpointOutcome.approved, CheckpointOutcome.edited], RunOutcome.edited),
        (RunStatus.succeeded, [CheckpointOutcome.approved, CheckpointOutcome.rejected], RunOutcome.declined),
        (RunStatus.succeeded, [CheckpointOutcome.answered], RunOutcome.answered),
        (RunStatus.succeeded, [CheckpointOutcome.option], RunOutcome.option),
        # an approval then a failed step: the decision stands, the status says what broke
        (RunStatus.failed, [CheckpointOutcome.approved], RunOutcome.approved),
        # a branch's checkpoint closed because the run ended elsewhere does not count
        (RunStatus.succeeded, [CheckpointOutcome.approved, CheckpointOutcome.cancelled], RunOutcome.approved),
        (RunStatus.succeeded, [], None),
        (RunStatus.failed, [], None),
        (RunStatus.cancelled, [CheckpointOutcome.approved], RunOutcome.cancelled),
        (RunStatus.waiting, [CheckpointOutcome.approved, None], None),
        (RunStatus.running, [CheckpointOutcome.rejected], None),
    ],
)
def test_outcome_rules(
    status: RunStatus, outcomes: list[CheckpointOutcome | None], expected: RunOutcome | None
) -> None:
    checkpoints = [_cp(o, n) for n, o in enumerate(outcomes)]
    assert run_outcome(_run(status), checkpoints) is expected


def test_checkpoints_of_other_runs_are_ignored() -> None:
    other = _cp(CheckpointOutcome.rejected, run_id="run_2")
    assert run_outcome(_run(RunStatus.succeeded), [other, _cp(CheckpointOutcome.approved, 2)]) is (
        RunOutcome.approved
    )
