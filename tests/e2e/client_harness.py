"""A faulty HTTP proxy in front of the real server: it answers scripted failures (5xx with
``Retry-After``, a dropped connection), forwards everything else, and records what it saw."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["FaultyProxy", "Seen", "faulty_proxy"]


@dataclass(frozen=True)
class Seen:
    """One request the proxy received, and when (monotonic seconds)."""

    method: str
    path_qs: str
    at: float


@dataclass
class FaultyProxy:
    """Forwards to ``target``; the next requests get the ``faults`` first, in order.

    A fault is ``"drop"`` (close the connection without an answer) or ``(status, retry_after)``.
    """

    target: str
    faults: list[str | tuple[int, str | None]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _http: aiohttp.ClientSession | None = None

    def to(self, path_prefix: str) -> list[Seen]:
        """The requests whose path starts with ``path_prefix``."""
        return [s for s in self.seen if s.path_qs.startswith(path_prefix)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer the next fault, or forward the request as it came."""
        self.seen.append(Seen(request.method, request.path_qs, time.monotonic()))
        body = await request.read()
        if self.faults:
            fault = self.faults.pop(0)
            if isinstance(fault, str):  # "drop"
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500)
            status, retry_after = fault
            headers = {"Retry-After": retry_after} if retry_after else {}
            problem = {
                "type": "about:blank",
                "title": "x",
                "status": status,
                "detail": "scripted",
                "code": "x",
            }
            return web.json_response(
                problem, status=status, headers=headers, content_type="application/problem+json"
            )
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}}
        async with self._http.request(
            request.method, self.target + request.path_qs, data=body or None, headers=headers
        ) as answer:
            payload = await answer.read()
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() in {"content-type", "idempotent-replayed"}
            }
            return web.Response(status=answer.status, body=payload, headers=kept)


@asynccontextmanager
async def faulty_proxy(target: str) -> AsyncIterator[FaultyProxy]:
    """A proxy to ``target`` on an ephemeral 127.0.0.1 port."""
    proxy = FaultyProxy(target)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    async with aiohttp.ClientSession() as http, TestServer(app, host="127.0.0.1") as server:
        proxy._http = http
        proxy.url = str(server.make_url("")).rstrip("/")
        yield proxy
