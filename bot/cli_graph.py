"""``signoff graph``: a workflow's graph (and a run's path on it) as SVG, DOT or Mermaid.

Every node id and every edge condition is in the output, whichever the format. With ``--run``
the graph is the version the run is pinned to, with each node's state (done, waiting, failed,
skipped, ...) and the edges the run took.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bot.wiring import Container

__all__ = ["graph", "register"]


class Format(StrEnum):
    """The output formats (``bot.graphs.GraphFormat``, named here so that ``--help`` stays light)."""

    svg = "svg"
    dot = "dot"
    mermaid = "mermaid"


def graph(
    workflow: Annotated[str, typer.Argument(help="the workflow id")],
    run: Annotated[str | None, typer.Option("--run", help="overlay this run's path")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="svg, dot or mermaid")] = Format.svg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to this file (default: stdout)")
    ] = None,
) -> None:
    """Draw a workflow: nodes by kind, edges labelled with their conditions, a run's path."""
    from bot.cli import _run
    from bot.graphs import GraphFormat, load_graph, render
    from engine.errors import InvalidInput

    chosen = GraphFormat(fmt.value)

    async def work(c: Container) -> str:
        if run is None:
            return await render(await load_graph(c.catalog.get(workflow), c.store), chosen)
        found = await c.store.get_run(run)
        if found.workflow_id != workflow:
            raise InvalidInput(f"run {run} is a run of '{found.workflow_id}', not of '{workflow}'")
        pinned = await c.catalog.pinned(found.workflow_hash, c.store)
        return await render(await load_graph(pinned, c.store, run), chosen)

    # the sandbox too: workflows with skill nodes load only where skills can run
    text = _run(work, with_sandbox=True)
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        output.write_text(text, encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Add ``graph`` to the ``signoff`` command line."""
    app.command("graph")(graph)
