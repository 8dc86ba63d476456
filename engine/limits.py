"""Execution limits: an engine layer that stops a run before a node that would exceed them.

A layer looks at a read-only view of a run before each node and may give a reason to stop it;
the engine then ends the run ``failed`` with that reason, in one commit with its audit event
(``engine._driving``). The limits of a run are the stricter of its workflow's ``limits:`` and
the deployment's (``SIGNOFF_MAX_STEPS``, ``SIGNOFF_MAX_WALL_TIME``, ``SIGNOFF_MAX_TOKENS``,
``SIGNOFF_MAX_COST``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from engine.model import Limits, Run, Step, Workflow

__all__ = ["ExecutionLimits", "Layer", "RunView", "Usage", "usage_of"]


@dataclass(frozen=True)
class RunView:
    """What a layer sees before a node starts: the run, its version, its steps, the time."""

    run: Run
    workflow: Workflow
    steps: Sequence[Step]
    node_id: str
    now: datetime


class Layer(Protocol):
    """Cross-cutting rules the engine asks before every node."""

    def before_node(self, view: RunView) -> str | None:
        """A reason to stop the run before ``view.node_id``, or None to go on."""
        ...


@dataclass(frozen=True)
class Usage:
    """What a run has used so far."""

    steps: int
    wall_time: timedelta
    tokens: int
    cost: float


def usage_of(run: Run, steps: Sequence[Step], now: datetime) -> Usage:
    """Node executions (a node run again after a crash counts again), time since the start,
    tokens in and out, and cost in USD."""
    return Usage(
        steps=sum(s.attempt for s in steps),
        wall_time=now - run.created_at,
        tokens=sum((s.input_tokens or 0) + (s.output_tokens or 0) for s in steps),
        cost=sum(s.cost_usd or 0.0 for s in steps),
    )


class ExecutionLimits:
    """Stops a run once it has used up one of its limits."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def of(self, workflow: Workflow) -> Limits:
        """The limits a run of ``workflow`` gets: the stricter of the workflow's and ours."""
        return workflow.limits.within(self.limits)

    def before_node(self, view: RunView) -> str | None:
        """Which limit is used up, said plainly, or None."""
        limits = self.of(view.workflow)
        used = usage_of(view.run, view.steps, view.now)
        found: list[tuple[str, object, object]] = []
        if limits.max_steps is not None and used.steps >= limits.max_steps:
            found.append(("max_steps", f"{used.steps} node executions", limits.max_steps))
        if limits.max_wall_time is not None and used.wall_time >= limits.max_wall_time:
            found.append(
                (
                    "max_wall_time",
                    f"{_seconds(used.wall_time)} since the start",
                    _seconds(limits.max_wall_time),
                )
            )
        if limits.max_tokens is not None and used.tokens >= limits.max_tokens:
            found.append(("max_tokens", f"{used.tokens} tokens", limits.max_tokens))
        if limits.max_cost is not None and used.cost >= limits.max_cost:
            found.append(("max_cost", f"${used.cost:.4f}", f"${limits.max_cost:.4f}"))
        if not found:
            return None
        name, amount, limit = found[0]
        before = f"(stopped before node '{view.node_id}')"
        return f"execution limit {name} reached: {amount}, the limit is {limit} {before}"


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"
