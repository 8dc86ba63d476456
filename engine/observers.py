"""What the engine tells observers: metrics, logs and traces are built from these events.

The engine stays free of any telemetry library: it emits typed, frozen events to the
``Observer`` port after each commit, and keeps the ids of the work in hand (run, node,
checkpoint) in a context variable that a log formatter can read (``current_ids``). Adapters in
``bot/telemetry/`` turn events into Prometheus series, log lines and OpenTelemetry spans.

An observer only watches: it is called synchronously, after the change it reports has been
committed, and whatever it raises is logged and swallowed, so it can never change or stop a run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Annotated, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CheckpointDecided",
    "CheckpointOpened",
    "DeliveryFailed",
    "EngineEvent",
    "GaugeSource",
    "Gauges",
    "LeaseTakenOver",
    "Observer",
    "RunFinished",
    "RunStarted",
    "StepFinished",
    "TimerFired",
    "bind_ids",
    "bound_ids",
    "current_ids",
    "emit",
]

log = logging.getLogger("signoff.observers")

# the ids of the run, node and checkpoint being worked on in this task (None: not bound)
_IDS: ContextVar[dict[str, str] | None] = ContextVar("signoff_ids", default=None)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime


class RunStarted(_Event):
    """A run was created (queued)."""

    kind: Literal["run.started"] = "run.started"
    run_id: str
    workflow: str


class RunFinished(_Event):
    """A run ended: ``outcome`` is its final status (succeeded, rejected, failed, cancelled)."""

    kind: Literal["run.finished"] = "run.finished"
    run_id: str
    workflow: str
    outcome: str
    started_at: datetime


class StepFinished(_Event):
    """A node's step ended (``status``: succeeded or failed); a human node's ends with its decision."""

    kind: Literal["step.finished"] = "step.finished"
    run_id: str
    workflow: str
    step_id: str
    node_id: str
    node_type: str
    status: str
    attempt: int
    started_at: datetime
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None


class CheckpointOpened(_Event):
    """A human node opened a checkpoint; the run waits."""

    kind: Literal["checkpoint.opened"] = "checkpoint.opened"
    run_id: str
    workflow: str
    checkpoint_id: str
    node_id: str


class CheckpointDecided(_Event):
    """A checkpoint was resolved: by a person, a timeout or a policy (``resolved_by``)."""

    kind: Literal["checkpoint.decided"] = "checkpoint.decided"
    run_id: str
    workflow: str
    checkpoint_id: str
    node_id: str
    action: str
    resolved_by: str
    opened_at: datetime


class LeaseTakenOver(_Event):
    """This process took over a run whose lease another process let expire."""

    kind: Literal["lease.taken_over"] = "lease.taken_over"
    run_id: str
    previous_owner: str


class DeliveryFailed(_Event):
    """One attempt to send an outbox row failed (``final``: it will not be tried again)."""

    kind: Literal["delivery.failed"] = "delivery.failed"
    delivery_id: str
    delivery_kind: str
    method: str
    retryable: bool
    final: bool


class TimerFired(_Event):
    """A checkpoint's deadline timer fired ``at``, for a deadline ``due_at`` that has passed."""

    kind: Literal["timer.fired"] = "timer.fired"
    checkpoint_id: str
    timer: Literal["deadline"] = "deadline"
    due_at: datetime


EngineEvent = Annotated[
    RunStarted
    | RunFinished
    | StepFinished
    | CheckpointOpened
    | CheckpointDecided
    | LeaseTakenOver
    | DeliveryFailed
    | TimerFired,
    Field(discriminator="kind"),
]


class Observer(Protocol):
    """Watches the engine: metrics, logs, traces (``bot/telemetry``)."""

    def on_event(self, event: EngineEvent) -> None:
        """Called once per event, after the change it reports was committed; must not block."""
        ...


class Gauges(BaseModel):
    """What is true now, read from the database, so every replica reports the same."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    open_checkpoints: int
    overdue_checkpoints: int  # open, with a deadline that has passed
    outbox_pending: int  # outbox rows not yet sent (waiting for a first attempt or a retry)


@runtime_checkable
class GaugeSource(Protocol):
    """A store that counts, with indexed queries, what the gauges report."""

    async def gauges(self, now: datetime) -> Gauges:
        """The counts as of ``now`` (one read transaction)."""
        ...


def emit(observers: Sequence[Observer], event: EngineEvent) -> None:
    """Tell every observer; one that raises is logged and the others still hear of it."""
    for observer in observers:
        try:
            observer.on_event(event)
        except Exception:  # an observer must never change or stop a run
            log.exception("observer %s failed on %s", type(observer).__name__, event.kind)


def current_ids() -> dict[str, str]:
    """The run, node and checkpoint ids bound in this task (for log lines)."""
    return dict(_IDS.get() or {})


@contextlib.contextmanager
def bound_ids(**ids: str | None) -> Iterator[None]:
    """Bind ids (``run_id``, ``node_id``, ``checkpoint_id``) for the duration of a block; ``None``
    unbinds one. The previous ids are restored on the way out."""
    token = _IDS.set(_merged(ids))
    try:
        yield
    finally:
        _IDS.reset(token)


def bind_ids(**ids: str | None) -> None:
    """Bind more ids until the enclosing ``bound_ids`` block ends."""
    _IDS.set(_merged(ids))


def _merged(ids: dict[str, str | None]) -> dict[str, str]:
    merged = dict(_IDS.get() or {})
    for key, value in ids.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
