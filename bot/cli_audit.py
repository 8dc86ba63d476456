"""``signoff audit ...``, ``signoff stats`` and ``signoff delegate``: evidence, analytics, policy."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot._cli_output import console, err_console, print_json

if TYPE_CHECKING:
    from bot.wiring import Container
    from engine.model import AuditEvent
    from engine.sensitive import Redactor

__all__ = ["audit_app", "register"]

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


def _since(value: str | None, now: datetime) -> datetime | None:
    """``30d`` / ``4h`` (relative) or an ISO date."""
    from engine.model import parse_duration

    if value is None:
        return None
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: use a duration like 30d or a date like YYYY-MM-DD") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)


def _event_json(e: AuditEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.at.isoformat(),
        "actor": e.actor,
        "channel": e.channel,
        "kind": e.kind,
        "run_id": e.run_id,
        "checkpoint_id": e.checkpoint_id,
        "payload": e.payload,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


async def _masked(c: Container, events: list[AuditEvent]) -> list[AuditEvent]:
    """Events with each run's sensitive values masked (hashes stay those stored: verify reads
    the store, never an export)."""
    from engine.errors import NotFound
    from engine.sensitive import Redactor, redact_event

    redactors: dict[str, Redactor] = {}
    out = []
    for e in events:
        if e.run_id is None:
            out.append(e)
            continue
        if e.run_id not in redactors:
            try:
                redactors[e.run_id] = await c.engine.redactor(await c.store.get_run(e.run_id))
            except NotFound:
                redactors[e.run_id] = Redactor()
        out.append(redact_event(redactors[e.run_id], e))
    return out


@audit_app.command("verify")
def verify() -> None:
    """Check the hash chain and every decision against it; reports the first modified, deleted,
    inserted or reordered event, and any decision changed, deleted or added outside Signoff."""
    from bot.cli import EXIT_BAD_INPUT, _run
    from engine.audit import verify_chain, verify_decisions

    async def work(c: Container) -> Any:
        events = await c.store.audit_events()
        chain = verify_chain(events, await c.store.audit_head())
        return chain, verify_decisions(events, await c.store.list_decisions())

    chain, decisions = _run(work)
    if not chain.ok:
        err_console.print(
            f"[red]audit chain broken[/red] at event {chain.first_bad_seq}: {chain.problem}", soft_wrap=True
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    if not decisions.ok:
        err_console.print(
            f"[red]decisions do not match the audit chain[/red]: {decisions.problem}", soft_wrap=True
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    console.print(
        f"[green]ok[/green]: {chain.checked} audit events, chain intact; "
        f"{decisions.checked} decisions match their events"
    )


@audit_app.command("export")
def export(
    run: Annotated[str | None, typer.Option("--run", help="only this run")] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="only runs of this workflow")] = None,
    since: Annotated[str | None, typer.Option(help="30d, 4h or an ISO date")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
) -> None:
    """Print audit events as JSON lines or CSV (all, one run's, or one workflow's runs')."""
    from bot.cli import EXIT_BAD_INPUT, _fail, _run

    if fmt not in {"jsonl", "csv"}:
        raise _fail(f"--format must be jsonl or csv, not {fmt!r}", EXIT_BAD_INPUT)

    async def work(c: Container) -> list[AuditEvent]:
        events = await c.store.audit_events(run_id=run, since=_since(since, c.clock.now()))
        if workflow is not None:
            runs = {r.id for r in await c.store.list_runs(workflow_id=workflow, limit=1_000_000)}
            events = [e for e in events if e.run_id in runs]
        return await _masked(c, events)

    events = _run(work)
    if fmt == "jsonl":
        for e in events:
            print(json.dumps(_event_json(e), ensure_ascii=False, default=str))  # noqa: T201
        return
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["seq", "at", "actor", "channel", "kind", "run_id", "checkpoint_id", "payload", "prev_hash", "hash"]
    )
    for e in events:
        row = _event_json(e)
        row["payload"] = json.dumps(e.payload, sort_keys=True, default=str)
        writer.writerow(row.values())
    print(out.getvalue(), end="")  # noqa: T201


@audit_app.command("show")
def show(run_id: str) -> None:
    """Who approved what, when, from where, having seen what."""
    from bot.cli import _run

    async def work(c: Container) -> Any:
        return await c.store.get_run(run_id), await _masked(c, await c.store.audit_events(run_id=run_id))

    from rich.table import Table

    found, events = _run(work)
    console.print(
        f"[bold]{found.id}[/bold] {found.workflow_id} ({found.status.value}), started by {found.requester}"
    )
    console.print(f"workflow version {found.workflow_hash[:16]}…")
    table = Table("seq", "time (UTC)", "who", "from", "what", "details")
    table.columns[4].no_wrap = True
    table.columns[4].min_width = 18
    for e in events:
        table.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.channel, e.kind, _details(e))
    console.print(table)


def _details(e: AuditEvent) -> str:
    p = e.payload
    if e.kind == "decision.recorded":
        diff = ", ".join(f"{k}: {v['before']!r}→{v['after']!r}" for k, v in (p.get("diff") or {}).items())
        parts = [
            f"{p.get('action')} ({p.get('resolved_by')})",
            f"saw {str(p.get('shown_hash'))[:12]}…"
            + (f" (rendered as {str(p['seen_hash'])[:12]}…)" if p.get("seen_hash") else ""),
            f"next node gets {str(p.get('output_hash'))[:12]}…",
        ]
        if diff:
            parts.append(f"edits: {diff}")
        if p.get("comment"):
            parts.append(f"comment: {p['comment']}")
        return "; ".join(parts)
    if e.kind == "checkpoint.opened":
        return (
            f"{p.get('node')} for {', '.join(p.get('assignees', []))}; shown {str(p.get('shown_hash'))[:12]}…"
        )
    if e.kind == "checkpoint.passed":
        return f"{p.get('expression')} with {p.get('values')}"
    return ", ".join(f"{k}={v}" for k, v in p.items() if v not in (None, [], {}))[:200]


def purge_cmd(
    older_than: Annotated[str, typer.Option("--older-than", help="e.g. 90d: runs that ended before then")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only say which runs would be purged")] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="who purges (recorded in the audit)")] = None,
) -> None:
    """Remove the payloads of runs that ended long ago (inputs, step data, decisions' data,
    messages, workspaces), keeping who did what, when, and the digests: audit verify still passes."""
    from bot.cli import EXIT_BAD_INPUT, _fail, _me, _run
    from engine.model import parse_duration
    from engine.retention import purge

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise _fail(f"--older-than: {exc}", EXIT_BAD_INPUT) from None
    me = _me(as_user)
    report = _run(lambda c: purge(c.engine, older_than=age, actor=me, channel="cli", dry_run=dry_run))
    if dry_run:
        console.print(f"{len(report.run_ids)} run(s) would be purged", highlight=False)
        for run_id in report.run_ids:
            console.print(f"  {run_id}", highlight=False, markup=False)
        return
    console.print(
        f"purged {report.runs} run(s): {report.steps} steps, {report.checkpoints} checkpoints, "
        f"{report.decisions} decisions, {report.deliveries} messages, {report.events} audit events",
        highlight=False,
    )


def stats(
    workflow: Annotated[str | None, typer.Option("--workflow", help="only this workflow")] = None,
    since: Annotated[str, typer.Option(help="30d, 4h or an ISO date")] = "30d",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per checkpoint: counts, approve/reject/edit/timeout rates, time to decision, approvers, advice."""
    from rich.table import Table

    from bot.cli import _run
    from engine.stats import load_stats

    async def work(c: Container) -> Any:
        return await load_stats(c.store, workflow=workflow, since=_since(since, c.clock.now()))

    report = _run(work)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    table = Table(
        "workflow", "node", "count", "open", "approve", "reject", "edit", "timeout", "median", "p90"
    )
    for n in report.nodes:
        table.add_row(
            n.workflow,
            n.node,
            str(n.count),
            str(n.open),
            f"{n.approve_rate:.0%}",
            f"{n.reject_rate:.0%}",
            f"{n.edit_rate:.0%}",
            f"{n.timeout_rate:.0%}",
            _secs(n.median_seconds),
            _secs(n.p90_seconds),
        )
    console.print(table)
    for n in report.nodes:
        for a in n.approvers:
            console.print(
                f"  {n.workflow}/{n.node} {a.actor}: {a.decisions} decided, {a.approved} approved, "
                f"{a.rejected} rejected, {a.edited} edited, median {_secs(a.median_seconds)}"
            )
        for line in n.advice:
            console.print(f"  [yellow]advice[/yellow] {n.workflow}/{n.node}: {line}")


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}s" if value < 120 else str(timedelta(seconds=round(value)))


def delegate_cmd(
    to: Annotated[str | None, typer.Option("--to", help="who decides for you")] = None,
    until: Annotated[
        str | None, typer.Option(help="last day, YYYY-MM-DD (inclusive, UTC), or a duration from now like 7d")
    ] = None,
    end: Annotated[bool, typer.Option("--end", help="end your active delegation(s) now")] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="whose checkpoints (default: you)")] = None,
) -> None:
    """Let someone who may hold your roles decide for you until a date (at most 30 days by
    default), or end it early with --end. Shown on cards and in the audit."""
    from bot.cli import EXIT_BAD_INPUT, _fail, _me, _run
    from engine.delegation import delegate, end_delegations

    me = _me(as_user)
    if end:
        if until is not None:
            raise _fail("--end takes no --until (it ends now)", EXIT_BAD_INPUT)
        ended = _run(lambda c: end_delegations(c.engine, delegator=me, actor=me, channel="cli", to=to))
        if not ended:
            raise _fail(f"{me} has no active delegation" + (f" to {to}" if to else ""), EXIT_BAD_INPUT)
        for d in ended:
            console.print(f"{d.delegate} no longer decides for {me}", highlight=False, markup=False)
        return
    if to is None or until is None:
        raise _fail("give --to and --until (or --end to stop delegating)", EXIT_BAD_INPUT)
    stop, shown = _until(until)
    _run(lambda c: delegate(c.engine, delegator=me, to=to, until=stop, actor=me, channel="cli"))
    console.print(f"{to} decides for {me} until {shown}", highlight=False, markup=False)


def _until(value: str) -> tuple[datetime, str]:
    """``--until``: a last day (inclusive, UTC) or a duration from now (``7d``, ``36h``)."""
    from bot.cli import EXIT_BAD_INPUT, _fail
    from bot.wiring import SystemClock
    from engine.model import parse_duration

    try:
        stop = SystemClock().now() + parse_duration(value)
        return stop, f"{stop:%Y-%m-%d %H:%M} (UTC)"
    except ValueError:
        pass
    try:
        last_day = date.fromisoformat(value)
    except ValueError:
        raise _fail(
            f"--until {value!r}: use a date like YYYY-MM-DD or a duration like 7d", EXIT_BAD_INPUT
        ) from None
    stop = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return stop, f"the end of {last_day.isoformat()} (UTC)"


def delegations_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Active delegations."""
    from bot.cli import _run

    async def work(c: Container) -> Any:
        return await c.store.list_delegations(active_at=c.clock.now())

    from rich.table import Table

    found = _run(work)
    if as_json:
        print_json([d.model_dump(mode="json") for d in found])
        return
    table = Table("delegator", "delegate", "from", "until")
    for d in found:
        table.add_row(d.delegator, d.delegate, f"{d.starts_at:%Y-%m-%d %H:%M}", f"{d.until:%Y-%m-%d %H:%M}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach ``audit``, ``stats``, ``delegate`` and ``delegations`` to the main CLI."""
    app.add_typer(audit_app, name="audit")
    app.command("stats")(stats)
    app.command("delegate")(delegate_cmd)
    app.command("delegations")(delegations_cmd)
    app.command("purge")(purge_cmd)
