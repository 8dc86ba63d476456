"""Workflow graphs for people: a workflow's (or a run's) graph as DOT, Mermaid or SVG.

The graph itself is pure (``engine.graph``); the SVG is drawn by Graphviz's ``dot`` program
through its Python binding, in a thread (it is a subprocess). Without Graphviz installed
(``apt-get install graphviz``), SVG is refused with ``GraphUnavailable`` and the console shows
the DOT text instead; DOT and Mermaid need no program.
"""

from __future__ import annotations

import asyncio
import shutil
from enum import StrEnum

import graphviz

from engine.errors import EngineError
from engine.graph import Graph, to_dot, to_mermaid, workflow_graph
from engine.model import Workflow
from engine.ports import RunStore

__all__ = ["GraphFormat", "GraphUnavailable", "drawable", "load_graph", "render", "svg"]

# the 5-node refund example draws in ~17 ms here (median of 10, dot 2.43); a pathological graph is cut off
_DOT_TIMEOUT_S = 20.0


class GraphFormat(StrEnum):
    """The output formats of ``signoff graph``."""

    svg = "svg"
    dot = "dot"
    mermaid = "mermaid"


class GraphUnavailable(EngineError):
    """Graphviz's ``dot`` program is not installed, or failed on this graph."""


def drawable() -> bool:
    """True when Graphviz's ``dot`` program is on the PATH (SVG can be drawn)."""
    return shutil.which("dot") is not None


async def load_graph(workflow: Workflow, store: RunStore, run_id: str | None = None) -> Graph:
    """The graph of ``workflow``, with the path of run ``run_id`` when given (NotFound)."""
    if run_id is None:
        return workflow_graph(workflow)
    run = await store.get_run(run_id)
    return workflow_graph(workflow, run, await store.list_steps(run_id))


def _draw(dot: str) -> str:
    try:
        drawn: str = graphviz.pipe_string("dot", "svg", dot, encoding="utf-8")
        return drawn
    except graphviz.ExecutableNotFound as exc:
        raise GraphUnavailable(
            "drawing SVG needs Graphviz's dot program (apt-get install graphviz); "
            "--format dot or --format mermaid need nothing"
        ) from exc
    except graphviz.CalledProcessError as exc:
        raise GraphUnavailable(f"Graphviz could not draw this graph: {exc.stderr or exc}") from exc


async def svg(graph: Graph) -> str:
    """The graph drawn by Graphviz as an SVG document (GraphUnavailable)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(_draw, to_dot(graph)), _DOT_TIMEOUT_S)
    except TimeoutError:
        raise GraphUnavailable(f"Graphviz took over {_DOT_TIMEOUT_S:.0f} s to draw this graph") from None


async def render(graph: Graph, fmt: GraphFormat) -> str:
    """The graph in ``fmt``."""
    if fmt is GraphFormat.dot:
        return to_dot(graph)
    if fmt is GraphFormat.mermaid:
        return to_mermaid(graph)
    return await svg(graph)
