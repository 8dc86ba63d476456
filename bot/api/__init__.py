"""The HTTP API for agents: ask people, wait for decisions, start runs, receive signed webhooks.

``mount(app, container)`` adds every route under ``/api/v1`` (from the one route table that
also generates ``/api/v1/openapi.json``), answers every error as an RFC 9457 problem, and, when
the application starts, wires the webhook sender into the process's outbox and the long-poll
waiters into the engine's change hook and the database's change feed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.api._deps import DEPS, ApiDeps
from bot.api._mcp import mount_mcp
from bot.api._openapi import OPENAPI_PATH, document
from bot.api._problems import ApiError, from_engine, problem_response
from bot.api._routes import OPERATIONS, PREFIX
from bot.api._sender import WEBHOOK_DELAYS, WebhookSender
from bot.api._waiting import Waiters
from bot.wiring import Container
from engine.errors import EngineError
from engine.events import EVENT_KIND, WEBHOOK_KIND
from engine.outbox import Route

__all__ = ["OPENAPI_PATH", "PREFIX", "ApiDeps", "WebhookSender", "mount"]

log = logging.getLogger("signoff.api")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# fanning an event out fails only when the database does: retried as long as a webhook is
_EVENT_DELAYS = (1.0, 5.0, 30.0, 300.0, 1800.0, 7200.0, 36000.0, 36000.0, 36000.0)
SQLITE_POLL_S = 0.2
MCP_WAIT_S = 50.0
"""How long an MCP tool call waits for a decision before answering ``pending``."""


def mount(
    app: web.Application,
    container: Container,
    *,
    poll_s: float = SQLITE_POLL_S,
    safety_s: float = 5.0,
    webhook_delays: tuple[float, ...] = WEBHOOK_DELAYS,
    mcp_wait_s: float = MCP_WAIT_S,
) -> ApiDeps:
    """Add the API to ``app`` (before it starts). Returns its state (tests reach the waiters)."""
    if container.clients is None:
        raise EngineError("the API needs a store that keeps API clients (SQLite or PostgreSQL)")
    waiters = Waiters(container.store, container.feed, poll_s=poll_s, safety_s=safety_s)
    deps = ApiDeps(container=container, clients=container.clients, waiters=waiters)
    app[DEPS] = deps
    for op in OPERATIONS:
        app.router.add_route(op.method, op.url, op.handler, name=f"api.{op.name}")
    app.router.add_get(OPENAPI_PATH, _openapi, name="api.openapi")
    app.router.add_route("*", PREFIX + "/{tail:.*}", _unknown, name="api.unknown")
    app.middlewares.append(_problems)
    mount_mcp(app, container.clients, wait_s=mcp_wait_s)
    sender = WebhookSender(container.store, container.clients, container.engine.deps.http, container.clock)

    async def start(_: web.Application) -> None:
        await waiters.start()
        previous = container.engine.on_change

        def changed(run_id: str) -> None:
            if previous is not None:
                previous(run_id)
            waiters.wake(run_id)

        container.engine.on_change = changed
        if container.outbox is not None:
            container.outbox.routes[EVENT_KIND] = Route(sender, _EVENT_DELAYS)
            container.outbox.routes[WEBHOOK_KIND] = Route(sender, webhook_delays)

    async def release(_: web.Application) -> None:
        # before aiohttp waits for the requests in flight: held long polls answer now
        waiters.release()

    async def stop(_: web.Application) -> None:
        await deps.stop()
        await waiters.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(release)
    app.on_cleanup.append(stop)
    return deps


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


_PATTERNS = [
    (re.compile("^" + re.escape(op.url).replace(r"\{id\}", "[^/]+") + "$"), op.method) for op in OPERATIONS
]


async def _unknown(request: web.Request) -> web.Response:
    allowed = sorted({method for pattern, method in _PATTERNS if pattern.match(request.path)})
    if allowed:
        methods = ", ".join(allowed)
        raise ApiError(405, "method_not_allowed", f"use {methods}", headers={"Allow": methods})
    raise ApiError(404, "not_found", f"no such API route: {request.method} {request.path}")


@web.middleware
async def _problems(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every answer under /api/ that is not a success is a problem document (never a traceback)."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as exc:
        return problem_response(exc)
    except EngineError as exc:
        return problem_response(from_engine(exc))
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        error = ApiError(405, "method_not_allowed", f"use {allowed}", headers={"Allow": allowed})
        return problem_response(error)
    except web.HTTPRequestEntityTooLarge:
        return problem_response(ApiError(413, "payload_too_large", "the body is over 1048576 bytes"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(ApiError(exc.status, "http_error", exc.reason))
    except Exception:
        error_id = request.app[DEPS].container.ids.new("err_")
        log.exception("API error %s on %s %s", error_id, request.method, request.path)
        return problem_response(
            ApiError(
                500,
                "internal_error",
                f"something went wrong on our side; the error id {error_id} is in the log",
            )
        )
