"""``signoff pause`` and ``signoff resume``: operator controls of a run (``signoff cancel`` is
in ``bot.cli``).

Both are commands to the engine written to the database, so the process driving the run,
wherever it is, stops before its next node; a resumed run continues here, or in any process's
recovery loop if this one stops first.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot._cli_output import console
from bot.wiring import Container
from engine.commands import Pause, Resume
from engine.model import Run

__all__ = ["register"]


def pause(
    run_id: str,
    as_user: Annotated[str | None, typer.Option("--as", help="who pauses (default: you)")] = None,
    reason: Annotated[str, typer.Option(help="recorded in the audit trail")] = "",
) -> None:
    """Pause a run before its next node (its requester or an admin); it still takes decisions."""
    from bot.cli import _me, _run

    command = Pause(run_id=run_id, actor=_me(as_user), channel="cli", reason=reason)
    paused: Run = _run(lambda c: c.engine.pause(command))
    console.print(f"run {paused.id} paused: it starts no node until `signoff resume {paused.id}`")


def resume(
    run_id: str,
    as_user: Annotated[str | None, typer.Option("--as", help="who resumes (default: you)")] = None,
) -> None:
    """Resume a paused run and continue it here until it waits or ends."""
    from bot.cli import _follow, _me, _run

    command = Resume(run_id=run_id, actor=_me(as_user), channel="cli")

    async def work(c: Container) -> Run:
        resumed = await c.engine.resume(command)
        console.print(f"run {resumed.id} resumed")
        run: Run = await _follow(c, resumed.id, wait=False, quiet=False)
        return run

    _run(work, with_sandbox=True)


def register(app: typer.Typer) -> None:
    """Add ``pause`` and ``resume`` to the ``signoff`` command."""
    app.command()(pause)
    app.command()(resume)
