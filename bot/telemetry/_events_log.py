"""One log line per engine event (private): runs, steps, checkpoints, takeovers.

Lines go to the ``signoff.engine.events`` logger with their fields as ``extra``, so the
structured formatter (``_logs``) writes them as JSON keys; inputs, outputs and decision data
are never logged, only ids, kinds, statuses, durations and usage.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.observers import (
    CheckpointDecided,
    CheckpointOpened,
    EngineEvent,
    LeaseTakenOver,
    RunFinished,
    RunStarted,
    StepFinished,
)

__all__ = ["EventLog"]

log = logging.getLogger("signoff.engine.events")


class EventLog:
    """An engine ``Observer`` that writes one structured line per event."""

    def on_event(self, event: EngineEvent) -> None:
        """Log ``event`` with its ids."""
        match event:
            case StepFinished():
                fields: dict[str, Any] = {
                    "run_id": event.run_id,
                    "node_id": event.node_id,
                    "step_id": event.step_id,
                    "workflow": event.workflow,
                    "node_type": event.node_type,
                    "status": event.status,
                    "attempt": event.attempt,
                    "duration_s": round((event.at - event.started_at).total_seconds(), 6),
                }
                usage = {
                    "model": event.model,
                    "input_tokens": event.input_tokens,
                    "output_tokens": event.output_tokens,
                    "cost_usd": event.cost_usd,
                }
                fields.update({k: v for k, v in usage.items() if v is not None})
                # a failed step's error text may quote its data: it is on the run's page, masked
                level = logging.WARNING if event.status == "failed" else logging.INFO
                log.log(level, "step %s", event.status, extra=fields)
            case RunStarted():
                log.info("run started", extra={"run_id": event.run_id, "workflow": event.workflow})
            case RunFinished():
                log.info(
                    "run %s",
                    event.outcome,
                    extra={"run_id": event.run_id, "workflow": event.workflow, "outcome": event.outcome},
                )
            case CheckpointOpened():
                log.info("checkpoint opened", extra=_checkpoint(event))
            case CheckpointDecided():
                fields = {**_checkpoint(event), "action": event.action, "resolved_by": event.resolved_by}
                log.info("checkpoint decided", extra=fields)
            case LeaseTakenOver():
                log.warning(
                    "run taken over from %s",
                    event.previous_owner,
                    extra={"run_id": event.run_id, "previous_owner": event.previous_owner},
                )
            case _:
                pass  # outbox failures and timers are logged where they happen


def _checkpoint(event: CheckpointOpened | CheckpointDecided) -> dict[str, Any]:
    return {
        "run_id": event.run_id,
        "node_id": event.node_id,
        "checkpoint_id": event.checkpoint_id,
        "workflow": event.workflow,
    }
