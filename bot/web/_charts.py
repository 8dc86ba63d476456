"""Chart data of the analytics page (private): ``GET /stats/charts/{chart}`` answers JSON.

The page draws it with uPlot (``static/uPlot.iife.min.js``, served from the package) through
``static/charts.js``; the figures come from ``engine.charts``.
"""

from __future__ import annotations

from typing import Literal, cast

from aiohttp import web

from bot.web._views import CONTAINER
from engine.charts import CHARTS, MAX_PERIOD, ChartQuery, load_chart
from engine.errors import InvalidInput
from engine.model import parse_duration

DEFAULT_SINCE = "30d"
GROUPINGS = ("workflow", "node", "model")
Grouping = Literal["workflow", "node", "model"]


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def chart_data(request: web.Request) -> web.Response:
    """One chart's series as JSON; a bad parameter is a 400 whose ``error`` names it."""
    container = request.app[CONTAINER]
    chart = request.match_info["chart"]
    if chart not in CHARTS:
        return web.json_response(
            {"error": f"unknown chart '{chart}': one of {', '.join(CHARTS)}"}, status=404
        )
    since_text = request.query.get("since", DEFAULT_SINCE).strip() or DEFAULT_SINCE
    try:
        period = parse_duration(since_text)
    except ValueError as exc:
        return _bad(f"since: {exc}")
    by = request.query.get("by", "node" if chart in ("latency", "cost") and request.query.get("node") else "")
    by = by or "workflow"
    if by not in GROUPINGS or (by == "model" and chart != "cost"):
        allowed = GROUPINGS if chart == "cost" else GROUPINGS[:2]
        return _bad(f"by: '{by}' is not one of {', '.join(allowed)}")
    workflow = request.query.get("workflow", "").strip() or None
    if period > MAX_PERIOD:
        return _bad(f"since: a chart covers at most {MAX_PERIOD.days} days")
    now = container.clock.now()
    query = ChartQuery(
        since=now - period,
        now=now,
        workflow=workflow,
        node=request.query.get("node", "").strip() or None,
        by=cast(Grouping, by),  # checked against GROUPINGS above
    )
    try:
        result = await load_chart(container.store, chart, query)
    except InvalidInput as exc:
        return _bad(str(exc))
    return web.json_response(text=result.model_dump_json())
