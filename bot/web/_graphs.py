"""The console's workflow graphs (private): SVG drawn by Graphviz, served as images.

A graph is an ``<img>`` on the workflow and run pages, not inline markup: the console's
Content-Security-Policy allows no inline style, and an SVG loaded as an image runs nothing.
The run page's script reloads the image when the run changes (``bot/web/static/live.js``).
"""

from __future__ import annotations

from aiohttp import web

from bot.graphs import GraphUnavailable, load_graph, svg
from bot.web._views import CONTAINER
from engine.graph import Graph

__all__ = ["run_graph", "workflow_graph_svg"]


async def _image(graph: Graph) -> web.Response:
    try:
        body = await svg(graph)
    except GraphUnavailable as exc:
        return web.Response(text=str(exc), status=503, content_type="text/plain")
    return web.Response(text=body, content_type="image/svg+xml", headers={"Cache-Control": "no-store"})


async def workflow_graph_svg(request: web.Request) -> web.Response:
    """``/workflows/{id}/graph.svg``: the current version's graph."""
    c = request.app[CONTAINER]
    return await _image(await load_graph(c.catalog.get(request.match_info["workflow_id"]), c.store))


async def run_graph(request: web.Request) -> web.Response:
    """``/runs/{id}/graph.svg``: the graph of the version the run is pinned to, with its path."""
    c = request.app[CONTAINER]
    run = await c.store.get_run(request.match_info["run_id"])
    pinned = await c.catalog.pinned(run.workflow_hash, c.store)
    return await _image(await load_graph(pinned, c.store, run.id))
