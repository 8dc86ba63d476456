"""``signoff pause``, ``signoff resume``, ``signoff rerun`` and ``signoff retry``: operator
controls of a run (``signoff cancel`` is in ``bot.cli``).

Pause and resume are commands to the engine written to the database, so the process driving
the run, wherever it is, stops before its next node; a resumed run continues here, or in any
process's recovery loop if this one stops first. A rerun is a new run linked to the original
(``engine.rerun``), driven here like ``signoff run``; a retry runs a failed run's failed steps
again in the same run, with the same idempotency keys, when their failure is retryable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

# the engine and the database are imported when a command runs (``signoff --help`` stays fast)
if TYPE_CHECKING:
    from bot.wiring import Container
    from engine.model import Run

__all__ = ["register"]


def pause(
    run_id: str,
    as_user: Annotated[str | None, typer.Option("--as", help="who pauses (default: you)")] = None,
    reason: Annotated[str, typer.Option(help="recorded in the audit trail")] = "",
) -> None:
    """Pause a run before its next node (its requester or an admin); it still takes decisions."""
    from bot._cli_output import console
    from bot.cli import _me, _run
    from engine.commands import Pause

    command = Pause(run_id=run_id, actor=_me(as_user), channel="cli", reason=reason)
    paused: Run = _run(lambda c: c.engine.pause(command))
    console.print(f"run {paused.id} paused: it starts no node until `signoff resume {paused.id}`")


def resume(
    run_id: str,
    as_user: Annotated[str | None, typer.Option("--as", help="who resumes (default: you)")] = None,
) -> None:
    """Resume a paused run and continue it here until it waits or ends."""
    from bot._cli_output import console
    from bot.cli import _follow, _me, _run
    from engine.commands import Resume

    command = Resume(run_id=run_id, actor=_me(as_user), channel="cli")

    async def work(c: Container) -> Run:
        resumed = await c.engine.resume(command)
        console.print(f"run {resumed.id} resumed")
        run: Run = await _follow(c, resumed.id, wait=False, quiet=False)
        return run

    _run(work, with_sandbox=True)


def rerun(
    run_id: str,
    from_node: Annotated[
        str | None,
        typer.Option("--from", help="rerun from this node (default: the failed node, else the start)"),
    ] = None,
    reask: Annotated[
        bool, typer.Option("--reask", help="ask the people of earlier checkpoints again")
    ] = False,
    latest: Annotated[
        bool, typer.Option("--latest", help="use the workflow's current version, not the original's")
    ] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="who reruns (default: you)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start a new run linked to an ended one, reusing its recorded outputs and decisions before
    the node it reruns from (nobody is asked again unless --reask)."""
    from bot._cli_output import console, print_json, run_json
    from bot.cli import EXIT_RUNTIME, _follow, _me, _run
    from engine.commands import Rerun
    from engine.model import RunStatus
    from engine.sensitive import redact_decision, redact_run, redact_step

    command = Rerun(
        run_id=run_id, actor=_me(as_user), channel="cli", from_node=from_node, reask=reask, latest=latest
    )

    async def work(c: Container) -> dict[str, Any]:
        new = await c.engine.rerun(command)
        if not as_json:
            reused = ", ".join(s.node_id for s in await c.store.list_steps(new.id)) or "nothing"
            console.print(f"started [bold]{new.id}[/bold], a rerun of {run_id} from {new.origin['from']}")
            console.print(f"  reused: {reused}")
        result = await _follow(c, new.id, wait=False, quiet=as_json)
        r = await c.engine.redactor(result)
        return run_json(
            redact_run(r, result),
            [redact_step(r, st) for st in await c.store.list_steps(new.id)],
            [redact_decision(r, d) for d in await c.store.list_decisions(run_id=new.id)],
        )

    out = _run(work, with_sandbox=True)
    if as_json:
        print_json(out)
    if out["status"] == RunStatus.failed.value:
        raise typer.Exit(EXIT_RUNTIME)


def retry(
    run_id: str,
    as_user: Annotated[str | None, typer.Option("--as", help="who retries (default: you)")] = None,
) -> None:
    """Run a failed run's failed steps again in the same run (same idempotency keys), when the
    failure is retryable (a 5xx, a timeout); otherwise says to rerun it."""
    from bot._cli_output import console
    from bot.cli import EXIT_RUNTIME, _follow, _me, _run
    from engine.commands import Retry
    from engine.model import RunStatus

    command = Retry(run_id=run_id, actor=_me(as_user), channel="cli")

    async def work(c: Container) -> Run:
        reopened = await c.engine.retry(command)
        console.print(f"run {reopened.id}: retrying {', '.join(reopened.pending)}")
        run: Run = await _follow(c, reopened.id, wait=False, quiet=False)
        return run

    if _run(work, with_sandbox=True).status is RunStatus.failed:
        raise typer.Exit(EXIT_RUNTIME)


def register(app: typer.Typer) -> None:
    """Add ``pause``, ``resume``, ``rerun`` and ``retry`` to the ``signoff`` command."""
    app.command()(pause)
    app.command()(resume)
    app.command()(rerun)
    app.command()(retry)
