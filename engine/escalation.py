"""Escalation chains: what each successive deadline of a checkpoint does (pure).

A chain fails closed: with no ``escalation`` a deadline rejects the checkpoint by policy,
whatever its kind (a ``review`` too); ``auto_approve`` happens only where the workflow says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from engine.model import Checkpoint, HumanConfig, parse_duration
from engine.ports import CheckpointTimes
from engine.roles import Role

__all__ = ["Kind", "Step", "TimerPlan", "escalates_to", "escalation_steps", "step_at", "timer_plan"]

Kind = Literal["auto_approve", "auto_reject", "escalate", "retry", "queue"]


@dataclass(frozen=True)
class Step:
    """What happens when a deadline passes: an action, and for a re-assignment the next timeout."""

    action: Kind
    to: str | None = None
    timeout: timedelta | None = None
    attempt: int = 0


@dataclass(frozen=True)
class TimerPlan:
    """When a checkpoint's deadline and reminders are due."""

    checkpoint_id: str
    level: int
    deadline: datetime | None
    reminders: list[tuple[int, datetime]]


def escalation_steps(config: HumanConfig, escalates_to: str | None = None) -> list[Step]:
    """The chain unrolled: what each successive deadline does.

    ``retry`` becomes ``max_retries`` retry steps; a level's ``final_action`` follows it; with no
    escalation at all a timeout rejects by policy, whatever the checkpoint's kind.
    """
    base = parse_duration(config.timeout) if config.timeout else None
    steps: list[Step] = []
    levels = config.levels()
    if not levels:
        return [Step("auto_reject")]
    for index, level in enumerate(levels):
        action = level["action"]
        # something follows this level: it needs a deadline, the node's own when it names none
        followed = bool(level.get("final_action")) or index < len(levels) - 1
        timeout = parse_duration(level["timeout"]) if level.get("timeout") else base
        if action == "retry":
            steps += [
                Step("retry", timeout=timeout, attempt=i + 1) for i in range(int(level.get("max_retries", 3)))
            ]
        elif action in {"escalate", "queue"}:
            to = level.get("to") or (escalates_to if action == "escalate" else None)
            steps.append(Step(action, to=to, timeout=timeout if level.get("timeout") or followed else None))
        else:
            steps.append(Step(action))
        if level.get("final_action"):
            steps.append(Step(level["final_action"]))
    return steps


def timer_plan(cp: Checkpoint | CheckpointTimes, config: HumanConfig) -> TimerPlan:
    """Deadline and reminder times of an open checkpoint (reminders count from when it opened)."""
    reminders = []
    if cp.escalation_level == 0:
        reminders = [(i, cp.created_at + parse_duration(r)) for i, r in enumerate(config.reminders)]
    checkpoint_id = cp.id if isinstance(cp, Checkpoint) else cp.checkpoint_id
    return TimerPlan(checkpoint_id, cp.escalation_level, cp.due_at, reminders)


def step_at(config: HumanConfig, level: int, escalates_to: str | None = None) -> Step:
    """The step the deadline at escalation ``level`` applies (past the chain's end: reject)."""
    steps = escalation_steps(config, escalates_to)
    return steps[level] if level < len(steps) else Step("auto_reject")


def escalates_to(config: HumanConfig, roles: Mapping[str, Role]) -> str | None:
    """Where ``escalate`` without ``to`` goes: the assignee role's ``escalates_to``."""
    role = config.assignee.removeprefix("role:") if isinstance(config.assignee, str) else None
    return roles[role].escalates_to if role is not None and role in roles else None
