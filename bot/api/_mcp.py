"""``/mcp``: the MCP tools (``signoff_client.mcp``) over streamable HTTP, on the server itself.

The MCP server is the same one ``signoff mcp`` runs over stdio; its tools call this server's
HTTP API over loopback with the caller's own key, so an MCP call has exactly the rights of the
key that made it (an agent's key asks and reads, never decides) and the same idempotency,
problems and decision gate as any API call. Every request to ``/mcp`` needs a valid key
(``Authorization: Bearer``), checked before the MCP transport sees it. The transport is
stateless (no session to pin to a replica) and answers JSON.

Served only when the ``mcp`` extra is installed (``mcp``, ``aiohttp-asgi``, ``signoff-client``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.api._auth import authenticate
from bot.api._problems import ApiError, problem_response
from engine.clients import ClientStore

if TYPE_CHECKING:
    import httpx
    from mcp.server.mcpserver import Context

__all__ = ["MCP_PATH", "available", "mount_mcp"]

MCP_PATH = "/mcp"
_LOOPBACK = "x-signoff-loopback"
_NEEDS = ("mcp", "aiohttp_asgi", "signoff_client", "httpx")
_STOP_S = 5.0  # the session manager stops at once; never wait longer on one that does not
log = logging.getLogger("signoff.api.mcp")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def available() -> bool:
    """Whether the packages the MCP endpoint needs are installed."""
    return all(importlib.util.find_spec(name) is not None for name in _NEEDS)


def _loopback(request: web.Request) -> str:
    """This server's own address, as the connection reached it."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        raise ApiError(503, "not_ready", "the MCP endpoint cannot reach this server's API")
    host, port = str(sockname[0]), int(sockname[1])
    if host in {"0.0.0.0", "::"}:  # noqa: S104 - an address we connect to, not one we bind
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _guard(clients: ClientStore) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path != MCP_PATH and not request.path.startswith(MCP_PATH + "/"):
            return await handler(request)
        try:
            await authenticate(request, clients)
            headers = request.headers.copy()
            headers[_LOOPBACK] = _loopback(request)  # always ours: a caller's value is replaced
        except ApiError as exc:
            return problem_response(exc)
        return await handler(request.clone(headers=headers))

    return guard


def _session_manager_task(
    run: Callable[[], AbstractAsyncContextManager[None]],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that holds the MCP session manager open in a task of its own.

    anyio cancel scopes (the manager's task group) must be exited by the task that entered
    them, and aiohttp enters and exits a cleanup context from different tasks; so one task
    enters ``run()``, holds it until the application's cleanup, and exits it itself.
    """

    async def hold(_: web.Application) -> AsyncIterator[None]:
        started = asyncio.Event()
        stopping = asyncio.Event()

        async def lifetime() -> None:
            async with run():
                started.set()
                await stopping.wait()

        def ended(task: asyncio.Task[None]) -> None:
            if not stopping.is_set() and (task.cancelled() or task.exception() is not None):
                # MCP requests now answer 500 ("Task group is not initialized") until a restart
                log.error("the MCP session manager stopped early", exc_info=_error(task))

        task = asyncio.create_task(lifetime(), name="signoff-mcp-sessions")
        task.add_done_callback(ended)
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait((task, waiting), return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task.done():
            task.result()  # it failed to start: the application does not start either
        try:
            yield
        finally:
            stopping.set()
            done, _pending = await asyncio.wait((task,), timeout=_STOP_S)
            if not done:
                log.warning("the MCP session manager did not stop in %.0f s: cancelling it", _STOP_S)
                task.cancel()
                await asyncio.wait((task,), timeout=_STOP_S)
            elif not task.cancelled() and task.exception() is not None:
                log.error("the MCP session manager failed", exc_info=task.exception())

    return hold


def _error(task: asyncio.Task[None]) -> BaseException | None:
    return asyncio.CancelledError() if task.cancelled() else task.exception()


def mount_mcp(app: web.Application, clients: ClientStore, *, wait_s: float) -> bool:
    """Serve the MCP tools at ``/mcp`` (before the app starts); False when the extra is missing."""
    if not available():
        log.info("MCP endpoint off: install the mcp extra (pip install -e clients/python -e '.[mcp]')")
        return False
    import httpx
    from aiohttp_asgi import ASGIResource
    from mcp.server.transport_security import TransportSecuritySettings

    from signoff_client import AsyncSignoff
    from signoff_client.mcp import build_server

    pool: dict[str, httpx.AsyncClient] = {}

    def client_for(ctx: Context[Any, Any]) -> AsyncSignoff:
        headers = ctx.headers or {}
        token = headers.get("authorization", "").partition(" ")[2].strip()
        return AsyncSignoff(headers[_LOOPBACK], token, http=pool["http"])

    server = build_server(client_for, wait_s=wait_s)
    # a key is required on every request, so browsers' DNS rebinding has nothing to reuse
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    asgi = server.streamable_http_app(
        streamable_http_path=MCP_PATH, stateless_http=True, json_response=True, transport_security=security
    )

    async def app_at_root(scope: Any, receive: Any, send: Any) -> None:
        # the MCP app routes MCP_PATH itself: it must see the whole path, not one under a root
        await asgi({**scope, "root_path": ""}, receive, send)

    resource = ASGIResource(app_at_root, root_path=MCP_PATH)
    app.router.register_resource(resource)
    # no ``resource.lifespan_mount``: aiohttp_asgi runs the lifespan in a task it does not
    # supervise and, finding it ended at shutdown (cancelled), starts a second one, which the
    # session manager refuses (``run()`` once per instance). We own the manager's task instead.
    app.cleanup_ctx.append(_session_manager_task(server.session_manager.run))
    app.middlewares.append(_guard(clients))

    async def http_pool(_: web.Application) -> Any:
        async with httpx.AsyncClient() as http:
            pool["http"] = http
            yield

    app.cleanup_ctx.append(http_pool)
    return True
