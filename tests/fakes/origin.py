"""A small HTTP server on 127.0.0.1 that records every request and answers from scripted routes.

Used as the destination (or the "metadata" server) of ``http`` nodes:

    async with Origin() as meta:
        meta.reply("/latest", "FAKE-SECRET")
        front.redirect("/start", meta.url("/latest"))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["Hit", "Origin"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Hit:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Origin:
    """The server; ``hits`` lists what reached it, in order."""

    hits: list[Hit] = field(default_factory=list)
    routes: dict[str, Handler] = field(default_factory=dict)
    _server: TestServer | None = None

    async def __aenter__(self) -> Origin:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            await self._server.close()

    @property
    def port(self) -> int:
        """The ephemeral port it listens on."""
        assert self._server is not None
        assert self._server.port is not None
        return self._server.port

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        """``http://{host}:{port}{path}``."""
        return f"http://{host}:{self.port}{path}"

    def reply(
        self, path: str, text: str, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``path`` with ``text``."""

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(text=text, status=status, headers=headers)

        self.routes[path] = handler

    def redirect(self, path: str, location: str, *, status: int = 302, body: str = "") -> None:
        """Answer ``path`` with a redirect to ``location`` (and a body, to check it is never shown)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location}, text=body)

        self.routes[path] = handler

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.hits.append(Hit(request.method, request.path, dict(request.headers), body))
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="no such route")
        return await handler(request)
