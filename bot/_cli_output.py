"""Rendering for the CLI: Rich tables for people, plain JSON for scripts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.model import Checkpoint, Decision, Run, Step

__all__ = [
    "checkpoint_json",
    "console",
    "err_console",
    "print_json",
    "run_json",
    "runs_table",
    "show_run",
    "tasks_table",
]

console = Console()
err_console = Console(stderr=True)


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no colour codes), for scripts."""
    print(json.dumps(value, indent=2, default=str, ensure_ascii=False))  # noqa: T201


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)


def step_json(step: Step) -> dict[str, Any]:
    """A step as the ``show --json`` output has it."""
    return {
        "node_id": step.node_id,
        "type": step.node_type,
        "status": step.status.value,
        "attempt": step.attempt,
        "started_at": step.started_at.isoformat(),
        "ended_at": step.ended_at.isoformat() if step.ended_at else None,
        "duration_ms": _ms(step.started_at, step.ended_at),
        "output": step.output.model_dump(mode="json") if step.output else None,
        "error": step.error,
        "input_tokens": step.input_tokens,
        "output_tokens": step.output_tokens,
        "cost_usd": step.cost_usd,
    }


def decision_json(decision: Decision) -> dict[str, Any]:
    """A decision as the ``show --json`` output has it."""
    return {
        "id": decision.id,
        "checkpoint_id": decision.checkpoint_id,
        "action": decision.action,
        "data": decision.data,
        "comment": decision.comment,
        "actor": decision.actor,
        "channel": decision.channel,
        "resolved_by": decision.resolved_by.value,
        "rule": decision.rule,
        "at": decision.created_at.isoformat(),
        "diff": decision.diff,
    }


def run_json(
    run: Run, steps: list[Step] | None = None, decisions: list[Decision] | None = None
) -> dict[str, Any]:
    """A run (with steps and decisions when given)."""
    out: dict[str, Any] = {
        "id": run.id,
        "workflow": run.workflow_id,
        "version": run.workflow_hash,
        "status": run.status.value,
        "requester": run.requester,
        "inputs": run.inputs,
        "reason": run.reason,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    if steps is not None:
        out["steps"] = [step_json(s) for s in steps]
    if decisions is not None:
        out["decisions"] = [decision_json(d) for d in decisions]
    return out


def checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    """An open checkpoint for ``tasks --json``."""
    return {
        "id": cp.id,
        "run_id": cp.run_id,
        "node_id": cp.node_id,
        "kind": cp.kind,
        "title": cp.title,
        "prompt": cp.prompt,
        "assignees": cp.assignees,
        "options": cp.options,
        "priority": cp.priority.value,
        "quorum": cp.quorum,
        "approvals": cp.approvals,
        "due_at": cp.due_at.isoformat() if cp.due_at else None,
        "created_at": cp.created_at.isoformat(),
    }


def runs_table(runs: list[Run]) -> Table:
    """Runs, newest first."""
    table = Table("run", "workflow", "status", "requester", "started", "reason")
    for run in runs:
        table.add_row(
            run.id,
            run.workflow_id,
            run.status.value,
            run.requester,
            f"{run.created_at:%Y-%m-%d %H:%M:%S}",
            run.reason or "",
        )
    return table


def tasks_table(checkpoints: list[Checkpoint], now: datetime) -> Table:
    """Open checkpoints with their time left."""
    table = Table("checkpoint", "run", "node", "title", "assignees", "priority", "due")
    for cp in checkpoints:
        due = ""
        if cp.due_at is not None:
            left = (cp.due_at - now).total_seconds()
            due = f"overdue by {-left:.0f}s" if left < 0 else f"in {left / 60:.0f} min"
        table.add_row(cp.id, cp.run_id, cp.node_id, cp.title, ", ".join(cp.assignees), cp.priority.value, due)
    return table


def show_run(run: Run, steps: list[Step], decisions: list[Decision]) -> None:
    """Print a run with its steps and decisions."""
    console.print(
        f"[bold]{run.id}[/bold]  {run.workflow_id}  [bold]{run.status.value}[/bold]  by {run.requester}"
    )
    if run.reason:
        console.print(f"reason: {run.reason}")
    table = Table("node", "type", "status", "duration", "output / error", "tokens", "cost")
    for step in steps:
        ms = _ms(step.started_at, step.ended_at)
        out = step.error or (json.dumps(step.output.data, default=str)[:120] if step.output else "")
        tokens = f"{step.input_tokens}/{step.output_tokens}" if step.input_tokens is not None else ""
        cost = f"${step.cost_usd:.4f}" if step.cost_usd is not None else ""
        table.add_row(
            step.node_id,
            step.node_type,
            step.status.value,
            "" if ms is None else f"{ms:.1f} ms",
            out,
            tokens,
            cost,
        )
    console.print(table)
    for d in decisions:
        who = d.actor if d.resolved_by.value == "human" else f"policy ({d.rule or d.resolved_by.value})"
        console.print(
            f"decision: {d.action} by {who} via {d.channel} at {d.created_at:%Y-%m-%d %H:%M:%S}"
            + (f" — {d.comment}" if d.comment else "")
        )
        for field, change in d.diff.items():
            console.print(f"  {field}: {change['before']!r} → {change['after']!r}")
