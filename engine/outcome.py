"""A run's outcome: what its checkpoints decided, apart from its technical status.

A run's status says whether the machinery worked (``succeeded``, ``failed``, ...); its outcome
says what people (or the timeout policy) decided on the way. A refund a manager declined may
end ``succeeded`` (a "declined" branch ran) or ``rejected`` (no edge for the reject): either
way its outcome is ``declined``. An outcome is derived, never stored: it is read from the run's
checkpoints, so every surface (CLI, console, API, Slack notices) shows the same word.

Rules, first match wins:

1. a cancelled run: ``cancelled``;
2. a run still going (queued, running, waiting): none yet;
3. any checkpoint a person rejected: ``declined``;
4. any checkpoint resolved by its timeout policy (an auto-reject or an auto-approve): ``timed_out``;
5. otherwise the strongest of the other resolutions: ``edited`` > ``answered`` > ``option``
   (a custom option) > ``approved``;
6. no checkpoint was resolved (no human node on its path): none.

Checkpoints closed because their run ended on another branch (outcome ``cancelled``) do not
count, unless the run itself was cancelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from engine.model import Checkpoint, CheckpointOutcome, Run, RunStatus
from engine.ports import RunStore

__all__ = ["RunOutcome", "load_outcome", "load_outcomes", "run_outcome"]


class RunOutcome(StrEnum):
    """What a run's checkpoints decided."""

    approved = "approved"
    declined = "declined"
    edited = "edited"
    answered = "answered"
    option = "option"
    timed_out = "timed_out"
    cancelled = "cancelled"


_RANK: list[tuple[CheckpointOutcome, RunOutcome]] = [
    (CheckpointOutcome.rejected, RunOutcome.declined),
    (CheckpointOutcome.timed_out, RunOutcome.timed_out),
    (CheckpointOutcome.edited, RunOutcome.edited),
    (CheckpointOutcome.answered, RunOutcome.answered),
    (CheckpointOutcome.option, RunOutcome.option),
    (CheckpointOutcome.approved, RunOutcome.approved),
]


def run_outcome(run: Run, checkpoints: Iterable[Checkpoint]) -> RunOutcome | None:
    """The outcome of ``run`` from its checkpoints (any order); None while it runs or when
    nothing was decided."""
    return _ranked(run, {cp.outcome for cp in checkpoints if cp.run_id == run.id and cp.outcome is not None})


def _ranked(run: Run, seen: set[CheckpointOutcome]) -> RunOutcome | None:
    """Rules 1, 2 and 5: the outcome of ``run`` from the outcomes of its checkpoints."""
    if run.status is RunStatus.cancelled:
        return RunOutcome.cancelled
    if not run.status.final:
        return None
    for checkpoint_outcome, outcome in _RANK:
        if checkpoint_outcome in seen:
            return outcome
    return None


async def load_outcome(store: RunStore, run: Run) -> RunOutcome | None:
    """``run_outcome`` with the run's checkpoints read from ``store``."""
    if not run.status.final or run.status is RunStatus.cancelled:
        return run_outcome(run, [])
    return run_outcome(run, await store.list_checkpoints(run_id=run.id))


async def load_outcomes(store: RunStore, runs: Iterable[Run]) -> dict[str, RunOutcome | None]:
    """Run id -> outcome for a page of runs, in one read of the ended runs' checkpoints."""
    page = list(runs)
    ended = [r.id for r in page if r.status.final and r.status is not RunStatus.cancelled]
    seen = await store.checkpoint_outcomes(ended) if ended else {}
    return {run.id: _ranked(run, seen.get(run.id, set())) for run in page}
