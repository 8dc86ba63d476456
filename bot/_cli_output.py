"""Rendering for the CLI: Rich tables for people, plain JSON for scripts.

Data is never Rich markup: every value is printed as a ``Text`` (or with ``markup=False``), with
control characters shown as escapes, so a value cannot style, move the cursor or rewrite a line.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from datetime import datetime

    from engine.model import Checkpoint, Decision, Run, Step
    from engine.outcome import RunOutcome

__all__ = [
    "checkpoint_json",
    "console",
    "data",
    "err_console",
    "id_table",
    "outcome_line",
    "print_checkpoint",
    "print_json",
    "run_json",
    "runs_table",
    "show_run",
    "tasks_table",
]

console = Console()
err_console = Console(stderr=True)


# C0/C1 control characters but new line and tab, and the bidirectional overrides
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(text: str) -> str:
    """``text`` for a terminal: control characters shown as ``\\x1b``-style escapes."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def data(text: str, style: str = "") -> Text:
    """A piece of data as Rich text: never markup, never a control sequence."""
    return Text(safe(text), style=style)


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
        "shown_hash": decision.shown_hash,
    }


def run_json(
    run: Run,
    steps: list[Step] | None = None,
    decisions: list[Decision] | None = None,
    *,
    outcome: RunOutcome | None = None,
) -> dict[str, Any]:
    """A run (with steps and decisions when given); ``outcome`` is what its checkpoints decided."""
    out: dict[str, Any] = {
        "id": run.id,
        "workflow": run.workflow_id,
        "version": run.workflow_hash,
        "status": run.status.value,
        "outcome": outcome.value if outcome else None,
        "requester": run.requester,
        "inputs": run.inputs,
        "reason": run.reason,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "paused_at": run.paused_at.isoformat() if run.paused_at else None,
        "paused_by": run.paused_by,
        "rerun_of": run.rerun_of,
    }
    if steps is not None:
        out["steps"] = [step_json(s) for s in steps]
    if decisions is not None:
        out["decisions"] = [decision_json(d) for d in decisions]
    return out


def checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    """A checkpoint for ``tasks --json`` and ``show --json``: its version and, in full, what
    Approve passes on (``proposed`` as values, ``proposal`` labelled as every surface shows it)."""
    from engine.shown import shown_document

    doc = shown_document(cp)
    return {
        "id": cp.id,
        "run_id": cp.run_id,
        "node_id": cp.node_id,
        "version": cp.version,
        "status": cp.status.value,
        "kind": cp.kind,
        "title": cp.title,
        "prompt": cp.prompt,
        "proposed": cp.proposed,
        "proposal": [f.model_dump() for f in doc.proposal],
        "shown_hash": cp.shown_hash,
        "assignees": cp.assignees,
        "options": cp.options,
        "priority": cp.priority.value,
        "quorum": cp.quorum,
        "approvals": cp.approvals,
        "due_at": cp.due_at.isoformat() if cp.due_at else None,
        "created_at": cp.created_at.isoformat(),
    }


def _lines(label: Text, text: str, indent: str) -> Text:
    """``label: value``; a value over several lines continues under the label, indented."""
    first, *rest = safe(text).split("\n") if text else ["(empty)"]
    out = Text(indent) + label + Text(": ") + Text(first)
    for line in rest:
        out += Text("\n" + indent + "    " + line)
    return out


def outcome_line(
    action: str, decision: Decision | None, after: Checkpoint, run: Run, outcome: RunOutcome | None = None
) -> str:
    """What ``respond`` did: the decision, or the vote or edit a quorum still waits on."""
    if decision is not None:
        ended = f", outcome {outcome.value}" if outcome else ""
        return f"{decision.action} recorded; run {run.id} is {run.status.value}{ended}"
    needed = after.quorum - len(after.approvals)
    if action in {"edit", "modify"}:
        # a quorum edit replaces the proposal: everyone but its editors approves it anew
        return f"edit recorded; {needed} approvals of the edited proposal needed"
    return f"approval recorded; {len(after.approvals)} of {after.quorum} approvals, {needed} more needed"


def print_checkpoint(cp: Checkpoint, *, intro: str | None = None) -> None:
    """A checkpoint as a person decides on it: title, version, prompt, context and, in full and
    labelled, every field Approve passes on."""
    from engine.shown import markup_text, shown_document

    doc = shown_document(cp)
    head = data(intro or "") + Text("checkpoint ") + data(cp.id, "bold") + Text(f" (version {cp.version}): ")
    console.print(head + data(doc.title or cp.node_id, "bold"), soft_wrap=True)
    where = (
        f"  run {cp.run_id}, node {cp.node_id}, priority {cp.priority.value}, for {', '.join(cp.assignees)}"
    )
    console.print(data(where), soft_wrap=True)
    if doc.prompt:
        console.print(_lines(Text("prompt"), markup_text(doc.prompt), "  "), soft_wrap=True)
    for f in doc.context:
        console.print(_lines(data(f.label), f.text, "  "), soft_wrap=True)
    if not doc.proposal:
        console.print(Text("  Approve passes on nothing."), soft_wrap=True)
        return
    console.print(Text("  Approve passes on:", style="bold"), soft_wrap=True)
    for f in doc.proposal:
        label = data(f.label, "bold") + data(f" ({f.field})", "dim")
        console.print(_lines(label, f.text, "    "), soft_wrap=True)


def id_table(*headers: str, ids: tuple[str, ...], rows: list[list[Text | str]]) -> Table:
    """A table whose id columns (``ids``, by header) are never cut or wrapped, whatever the
    terminal's width: the other columns wrap instead (80 columns hold a checkpoint or run id)."""
    table = Table(*headers, pad_edge=False)
    for column in table.columns:
        column.overflow = "fold"
    for row in rows:
        table.add_row(*row)
    for index, header in enumerate(headers):
        if header in ids:
            column = table.columns[index]
            column.no_wrap = True
            column.min_width = max([len(header), *(len(str(row[index])) for row in rows)])
    return table


def runs_table(runs: list[Run], outcomes: dict[str, RunOutcome | None]) -> Table:
    """Runs, newest first, each with its status and its outcome; run ids whole."""
    rows: list[list[Text | str]] = [
        [
            data(run.id),
            data(run.workflow_id),
            run.status.value + (" (paused)" if run.paused_at is not None and not run.status.final else ""),
            _outcome_word(outcomes.get(run.id)),
            data(run.requester),
            f"{run.created_at:%Y-%m-%d %H:%M}",
            data(run.reason or ""),
        ]
        for run in runs
    ]
    headers = ("run", "workflow", "status", "outcome", "requester", "started", "reason")
    # the words a reader scans the list for stay whole too; the other columns wrap
    return id_table(*headers, ids=("run", "status", "outcome"), rows=rows)


def _outcome_word(outcome: RunOutcome | None) -> str:
    return outcome.value if outcome else ""


def tasks_table(checkpoints: list[Checkpoint], now: datetime) -> Table:
    """Open checkpoints with their version and time left; checkpoint ids whole (each one's run id
    and priority follow in its details)."""
    rows: list[list[Text | str]] = []
    for cp in checkpoints:
        due = ""
        if cp.due_at is not None:
            left = (cp.due_at - now).total_seconds()
            due = f"overdue by {-left:.0f}s" if left < 0 else f"in {left / 60:.0f} min"
        rows.append(
            [
                data(cp.id),
                str(cp.version),
                data(cp.node_id),
                data(cp.title),
                data(", ".join(cp.assignees)),
                due,
            ]
        )
    return id_table("checkpoint", "v", "node", "title", "assignees", "due", ids=("checkpoint",), rows=rows)


def show_run(
    run: Run,
    steps: list[Step],
    decisions: list[Decision],
    checkpoints: list[Checkpoint],
    outcome: RunOutcome | None = None,
) -> None:
    """Print a run with its steps, its decisions and, in full, what its open checkpoints propose."""
    head = data(run.id, "bold") + Text("  ") + data(run.workflow_id) + Text("  ")
    status = Text(run.status.value, style="bold") + (Text(f" ({outcome.value})") if outcome else Text())
    console.print(head + status + Text("  by ") + data(run.requester))
    if run.reason:
        console.print(Text("reason: ") + data(run.reason), soft_wrap=True)
    if run.rerun_of is not None:
        console.print(Text("rerun of ") + data(run.rerun_of) + Text(f" from {run.origin.get('from', '?')}"))
    if run.paused_at is not None and not run.status.final:
        console.print(
            Text("paused by ") + data(run.paused_by or "") + Text(f" at {run.paused_at:%Y-%m-%d %H:%M:%S}")
        )
    rows: list[list[Text | str]] = []
    for step in steps:
        ms = _ms(step.started_at, step.ended_at)
        tokens = f"{step.input_tokens}/{step.output_tokens}" if step.input_tokens is not None else ""
        cost = f"${step.cost_usd:.4f}" if step.cost_usd is not None else ""
        duration = "" if ms is None else f"{ms:.1f} ms"
        rows.append([data(step.node_id), step.node_type, step.status.value, duration, tokens, cost])
    table = id_table("node", "type", "status", "duration", "tokens", "cost", ids=("node",), rows=rows)
    console.print(table)
    # outputs and errors in full, below the table: JSON is never cut (``--json`` for scripts)
    for step in steps:
        if step.error:
            console.print(_lines(data(f"{step.node_id} error", "bold red"), step.error, ""), soft_wrap=True)
        elif step.output is not None:
            console.print(data(f"{step.node_id} output:", "bold"), soft_wrap=True)
            console.print(
                data(json.dumps(step.output.data, indent=2, default=str, ensure_ascii=False)), soft_wrap=True
            )
    for d in decisions:
        who = d.actor if d.resolved_by.value == "human" else f"policy ({d.rule or d.resolved_by.value})"
        line = data(f"decision: {d.action} by {who} via {d.channel} at {d.created_at:%Y-%m-%d %H:%M:%S}")
        console.print(line + (data(f" — {d.comment}") if d.comment else Text()), soft_wrap=True)
        for field, change in d.diff.items():
            console.print(data(f"  {field}: {change['before']!r} → {change['after']!r}"), soft_wrap=True)
    for cp in checkpoints:
        if cp.status.value == "open":
            print_checkpoint(cp, intro="waiting: ")
