"""The local web console: start runs, follow them, and decide checkpoints in a browser.

Plain server-rendered HTML (Jinja2, autoescaped) on the process's aiohttp app. There is no
login: the console is for local mode, and the acting person's name comes from a cookie.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.web import _views
from bot.wiring import Container
from engine.errors import Conflict, EngineError, InvalidInput, NotAllowed, NotFound

__all__ = ["add_routes"]

log = logging.getLogger("signoff.web")
_HERE = Path(__file__).parent
_ROUTE_PREFIX = "web."
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(
    app: web.Application, container: Container, *, console: bool = True, read_only: bool = False
) -> None:
    """Mount the console on ``app``: pages, form targets, ``/healthz`` and ``/static/``.

    Also installs one middleware that, for the console's own routes only, turns an unknown
    id into a 404 page and any unexpected exception into a plain 500 page with a logged
    error id (never a traceback).

    Args:
        app: the process's application, not yet started.
        container: the wired process (store, catalog, engine, clock).
        console: mount the pages; without them only ``/healthz`` is served (Slack mode, where
            people are identified by Slack and an unauthenticated console would let anyone
            decide as anyone).
        read_only: serve the pages but none of the forms' targets (``SIGNOFF_WEB_CONSOLE=on``
            in Slack mode: people act in Slack, where they are identified).
    """
    app[_views.CONTAINER] = container
    app[_views.JINJA] = _environment()
    app[_views.TASKS] = set()
    app.middlewares.append(_errors)
    app.on_cleanup.append(_views.stop_tasks)
    routes: list[tuple[str, str, _Handler, str]] = [
        ("GET", "/healthz", _views.healthz, "healthz"),
        ("GET", "/", _views.home, "home"),
        ("POST", "/actor", _views.set_actor, "actor"),
        ("GET", "/workflows/{workflow_id}", _views.workflow_page, "workflow"),
        ("POST", "/workflows/{workflow_id}/runs", _views.start_run, "start"),
        ("GET", "/runs", _views.runs_page, "runs"),
        ("GET", "/stats", _views.stats_page, "stats"),
        ("GET", "/runs/{run_id}", _views.run_page, "run"),
        ("POST", "/runs/{run_id}/cancel", _views.cancel_run, "cancel"),
        ("GET", "/checkpoints/{checkpoint_id}", _views.checkpoint_page, "checkpoint"),
        ("POST", "/checkpoints/{checkpoint_id}/decide", _views.decide, "decide"),
    ]
    if not console:
        routes = routes[:1]
    elif read_only:
        routes = [r for r in routes if r[0] == "GET"]
    for method, path, handler, name in routes:
        app.router.add_route(method, path, handler, name=_ROUTE_PREFIX + name)
    app.router.add_static("/static/", _HERE / "static", name=_ROUTE_PREFIX + "static")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when, pretty=_pretty, compact=_compact, brief=_brief, left=_left, took=_took, short=_short
    )
    return env


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _brief(value: Any) -> str:
    # one line for an audit payload value: lists joined, timestamps in the page's format
    if isinstance(value, list):
        return ", ".join(v if isinstance(v, str) else _compact(v) for v in value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return _when(moment) if moment.tzinfo is not None else value
    return _compact(value)


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{secs}s"


def _left(due: datetime | None, now: datetime) -> str:
    if due is None:
        return "no deadline"
    delta = due - now
    return f"in {_span(delta)}" if delta.total_seconds() >= 0 else f"overdue by {_span(delta)}"


def _took(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    ms = (end - start).total_seconds() * 1000
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s" if ms < 60_000 else _span(end - start)


def _short(value: str, length: int = 12) -> str:
    return value if len(value) <= length else value[:length] + "…"


def _ours(request: web.Request) -> bool:
    route: web.AbstractRoute | None = request.match_info.route  # None for a mounted ASGI app (/mcp)
    return bool(route is not None and route.name and route.name.startswith(_ROUTE_PREFIX))


def _same_origin(request: web.Request) -> bool:
    # a page on another site must not be able to post decisions through a local browser
    origin = request.headers.get("Origin")
    return origin is None or origin == "null" or urlsplit(origin).netloc == request.host


def _page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return _views.render(request, "error.html", status=status, title=title, message=message)


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    if not _ours(request):
        return await handler(request)
    if request.method == "POST" and not _same_origin(request):
        return _page(request, 403, "Refused", "This form was posted from another site.")
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except NotFound as exc:
        return _page(request, 404, "Not found", str(exc))
    except (InvalidInput, NotAllowed, Conflict) as exc:
        status = 400 if isinstance(exc, InvalidInput) else 403 if isinstance(exc, NotAllowed) else 409
        return _page(request, status, "Could not do that", str(exc))
    except EngineError as exc:
        return _page(request, 400, "Could not do that", str(exc))
    except Exception:
        error_id = request.app[_views.CONTAINER].ids.new("err_")
        log.exception("web console error %s on %s %s", error_id, request.method, request.path)
        message = f"Something went wrong on our side. The error id {error_id} is in the server log."
        return web.Response(text=message, status=500, content_type="text/plain")
