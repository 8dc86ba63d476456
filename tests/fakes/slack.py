"""FakeSlack: the Slack Web API and the Socket Mode websocket, in-process, on an ephemeral port.

Point the real clients at it::

    async with FakeSlack() as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        socket = SocketModeClient(app_token="xapp-test", web_client=AsyncWebClient(base_url=fake.base_url))

slack_sdk joins ``base_url`` and the method name with ``urljoin``, so the methods are served at
both ``/<method>`` and ``/api/<method>``. Bodies may be JSON or form-encoded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from tests.fakes._slack_api import Json, WebApi
from tests.fakes._slack_oauth import OAuth

__all__ = ["Call", "FakeSlack", "sign_request"]

_SOCKET_TOKEN = "xapp-"
_WEB_TOKENS = ("xoxb-", "xoxp-", "xoxe.xoxb-", "xoxe.xoxp-")


@dataclass(frozen=True)
class Call:
    """One request the fake received: method name, merged params, and when (fake clock)."""

    method: str
    params: Json
    at: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Scripted:
    status: int
    body: Json
    headers: dict[str, str]


def sign_request(secret: str, body: bytes, ts: int | None = None) -> dict[str, str]:
    """The headers Slack adds to an HTTP request: ``X-Slack-Signature`` (v0) and the timestamp."""
    stamp = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


class FakeSlack:
    """A recording, scriptable fake of the parts of Slack the bot talks to.

    Args:
        trigger_ttl: seconds a trigger id stays valid (Slack: 3).
        clock: time source for trigger expiry and ``Call.at``; defaults to ``time.monotonic``.
        usergroups: user group id -> member ids, for ``usergroups.users.list``.

    ``team_usergroups`` (mutable): workspace id -> user groups of that workspace only, answered
    before ``usergroups`` to a token of that workspace (OAuth installs): Slack reads a group in
    the workspace of the token that asks.
    """

    def __init__(
        self,
        *,
        trigger_ttl: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        usergroups: dict[str, list[str]] | None = None,
    ) -> None:
        self.api = WebApi(clock=clock, trigger_ttl=trigger_ttl, usergroups=dict(usergroups or {}))
        # workspaces installing the app (OAuth v2), the tokens they got, and their rotation
        self.oauth = OAuth(wall=self.api.wall)
        self.team_usergroups: dict[str, dict[str, list[str]]] = {}
        self.calls: list[Call] = []
        self.socket_frames: list[Json] = []
        self._clock = clock
        self._scripts: dict[str, list[_Scripted]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = asyncio.Event()
        self._acks: dict[str, asyncio.Future[Json]] = {}
        app = web.Application()
        app.router.add_get("/link", self._link)
        app.router.add_route("*", "/api/{method}", self._web)
        app.router.add_route("*", "/{method}", self._web)
        self._server = TestServer(app, host="127.0.0.1")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        """Start listening on an ephemeral loopback port."""
        await self._server.start_server()
        self.api.ws_url = str(self._server.make_url("/link")).replace("http://", "ws://", 1)
        return self

    async def close(self) -> None:
        """Close every websocket, then the server."""
        for ws in list(self._sockets):
            await ws.close()
        await self._server.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/``: the ``base_url`` for ``AsyncWebClient``."""
        return str(self._server.make_url("/"))

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:<port>/api/``: the same methods under Slack's own path."""
        return self.base_url + "api/"

    @property
    def usergroups(self) -> dict[str, list[str]]:
        """User group id -> member ids (mutable)."""
        return self.api.usergroups

    @property
    def users(self) -> dict[str, Json]:
        """User id -> extra ``users.info`` fields (mutable); other U…/W… ids get a default user."""
        return self.api.users

    # ------------------------------------------------------------------ helpers for tests

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method, in order."""
        return [c for c in self.calls if c.method == method]

    def new_trigger_id(self) -> str:
        """Issue a single-use trigger id that expires after ``trigger_ttl`` seconds."""
        return self.api.new_trigger_id()

    def fail(self, method: str, *, error: str = "fatal_error", times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        self._script(method, _Scripted(200, {"ok": False, "error": error}, {}), times)

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP 429 with ``Retry-After``."""
        body = {"ok": False, "error": "ratelimited"}
        self._script(method, _Scripted(429, body, {"Retry-After": str(retry_after)}), times)

    def server_error(self, method: str, *, status: int = 500, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer an HTTP 5xx."""
        self._script(method, _Scripted(status, {"ok": False, "error": "fatal_error"}, {}), times)

    def _script(self, method: str, reply: _Scripted, times: int) -> None:
        self._scripts.setdefault(method, []).extend([reply] * times)

    # ------------------------------------------------------------------ Web API

    async def _params(self, request: web.Request) -> Json:
        params: Json = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        elif request.can_read_body:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    @staticmethod
    def _token(request: web.Request, params: Json) -> str:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return bearer or str(params.get("token") or "")

    def _auth_error(self, method: str, request: web.Request, params: Json) -> str | None:
        token = self._token(request, params)
        if not token:
            return "not_authed"
        wanted = (_SOCKET_TOKEN,) if method == "apps.connections.open" else _WEB_TOKENS
        return (None if token.startswith(wanted) else "invalid_auth") or self.oauth.check(token)

    def tokens_used(self, method: str) -> list[str]:
        """The token each call of ``method`` was made with, in order."""
        return [
            c.headers.get("Authorization", "").removeprefix("Bearer ") or str(c.params.get("token") or "")
            for c in self.calls_to(method)
        ]

    async def _web(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params, self._clock(), dict(request.headers)))
        queue = self._scripts.get(method)
        if queue:
            reply = queue.pop(0)
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        if method == "oauth.v2.access":  # the app's own credentials (Basic auth), not a token
            return web.json_response(self.oauth.access(params, request.headers.get("Authorization", "")))
        if error := self._auth_error(method, request, params):
            return web.json_response({"ok": False, "error": error})
        team = self.oauth.team_of(self._token(request, params))
        groups = self.team_usergroups.get(team.team_id, {}) if team is not None else {}
        if method == "usergroups.users.list" and str(params.get("usergroup") or "") in groups:
            members = groups[str(params.get("usergroup") or "")]
            return web.json_response({"ok": True, "users": list(members)}, headers=self.api.headers())
        if method == "auth.test" and team is not None:
            body: Json | None = self.api.m_auth_test(params) | {
                "team_id": team.team_id,
                "team": team.name,
                "user_id": team.bot_user_id,
                "bot_id": team.bot_id,
            }
        else:
            body = self.api.answer(method, params)
        return web.json_response(
            body if body is not None else {"ok": False, "error": "unknown_method"}, headers=self.api.headers()
        )

    # ------------------------------------------------------------------ Socket Mode

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # autoping answers the client's pings
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 10,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.api.app_id},
            }
        )
        self._connected.set()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._received(json.loads(msg.data))
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._connected.clear()
        return ws

    def _received(self, frame: Json) -> None:
        self.socket_frames.append(frame)
        future = self._acks.pop(str(frame.get("envelope_id", "")), None)
        if future is not None and not future.done():
            future.set_result(frame)

    async def wait_connected(self, timeout: float = 3.0) -> None:
        """Wait until a Socket Mode client has connected and been sent ``hello``."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def socket_send(
        self,
        envelope_type: str,
        payload: Json,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 3.0,
    ) -> Json:
        """Send an envelope to the connected app and return its ack frame.

        Raises:
            TimeoutError: no client connected, or no ack within ``timeout`` (Slack allows 3 s).
        """
        await self.wait_connected(timeout)
        envelope_id = str(uuid.uuid4())
        envelope: Json = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            envelope |= {"retry_attempt": retry_attempt, "retry_reason": retry_reason or ""}
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await self._sockets[-1].send_json(envelope)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._acks.pop(envelope_id, None)

    async def socket_disconnect(self, reason: str = "warning") -> None:
        """Send Slack's ``disconnect`` frame (``warning``, ``refresh_requested``, ``link_disabled``)."""
        for ws in list(self._sockets):
            await ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
            )
