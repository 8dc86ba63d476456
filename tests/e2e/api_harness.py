"""A Signoff process with the HTTP API, Slack on (FakeSlack), timers, and a webhook receiver.

Everything is reached over real HTTP: the API with aiohttp, Slack clicks as signed requests to
``/slack/events``, webhooks POSTed by the outbox to a receiver on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.api import ApiDeps, mount
from bot.api._auth import new_key
from bot.scheduler import Timers
from bot.slack import EVENTS_PATH, SlackSurface
from bot.web import add_routes
from bot.wiring import Container, build, database_url
from bot.worker import Worker
from engine.egress import EgressPolicy
from engine.timeouts import Timeouts
from tests.fakes.slack import FakeSlack
from tests.scenario._harness import GROUP, GROUP_MEMBER, SlackEnv, settings_for, write_project

# webhooks are retried quickly here (production waits 5 s, then minutes to hours)
FAST_RETRIES = (0.3, 0.6, 1.0, 1.0)


@dataclass
class Received:
    """One webhook as the receiver got it."""

    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        """The parsed body."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers each path's scripted statuses, then 200."""

    got: dict[str, list[Received]] = field(default_factory=dict)
    script: dict[str, list[int]] = field(default_factory=dict)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        """Record the request, answer the next scripted status."""
        name = request.match_info["name"]
        self.got.setdefault(name, []).append(Received(dict(request.headers), await request.read()))
        queue = self.script.get(name) or []
        return web.Response(status=queue.pop(0) if queue else 200)

    def at(self, name: str) -> str:
        """The URL of one receiving path."""
        return f"{self.url}/hooks/{name}"


@dataclass
class ApiEnv:
    """The running process and how to reach it."""

    slack: SlackEnv
    api: ApiDeps
    base: str
    receiver: Receiver
    timers: Timers
    app: web.Application

    @property
    def container(self) -> Container:
        """The wired process."""
        return self.slack.container

    @property
    def http(self) -> aiohttp.ClientSession:
        """The test's HTTP session."""
        return self.slack.http

    async def key(self, scopes: str, *, as_user: str | None = None, name: str = "agent") -> tuple[str, str]:
        """A new API key with ``scopes`` (comma-separated): ``(token, callback signing secret)``."""
        c = self.container
        assert c.clients is not None
        made = await new_key(
            c.clients,
            c.ids,
            c.clock.now(),
            name=name,
            scopes=scopes.split(","),
            as_user=as_user,
            created_by="test",
        )
        return made.token, made.signing_secret

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One API request: ``(status, JSON body, headers)``."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": sent}
        if body is not None:
            kwargs["json"] = body
        async with self.http.request(method, self.base + path, **kwargs) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else {}), dict(response.headers)

    async def until(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll ``check`` until it returns something truthy."""
        return await self.slack.until(check, timeout)


def ask_body(**changes: Any) -> dict[str, Any]:
    """An ask for the managers: approve sending a note (editable)."""
    body: dict[str, Any] = {
        "prompt": "Send this note to ACME?",
        "title": "Note to ACME",
        "show": {"customer": "ACME", "amount": 120},
        "proposed": {"message": "We refunded 120 USD."},
        "response_schema": {
            "type": "object",
            "properties": {"message": {"type": "string", "minLength": 5}},
            "required": ["message"],
        },
        "assignee": "role:manager",
    }
    body.update(changes)
    return body


# a step of the teardown that takes longer is stuck: fail with every task's stack (where it
# waits) rather than hang until pytest-timeout, which shows only the idle event loop
TEARDOWN_STEP_S = 45.0


def _task_stacks() -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks():
        print(repr(task), file=out)
        task.print_stack(limit=12, file=out)
    return out.getvalue()


async def _bounded(name: str, stop: Coroutine[Any, Any, None]) -> list[str]:
    """Run one teardown step for at most ``TEARDOWN_STEP_S``; returns what was stuck."""
    step = asyncio.ensure_future(stop)
    done, _pending = await asyncio.wait({step}, timeout=TEARDOWN_STEP_S)
    if done:
        step.result()
        return []
    stacks = _task_stacks()
    step.cancel()
    await asyncio.wait({step}, timeout=5.0)
    return [f"{name} did not stop within {TEARDOWN_STEP_S:.0f} s; the tasks then:\n{stacks}"]


@asynccontextmanager
async def api_env(
    root: Path, db_url: str, *, webhook_delays: tuple[float, ...] = FAST_RETRIES, mcp_wait_s: float = 50.0
) -> AsyncIterator[ApiEnv]:
    """FakeSlack, the process (Slack surface, worker, timers, API) and a webhook receiver."""
    write_project(root)
    receiver = Receiver()
    hooks = web.Application()
    hooks.router.add_post("/hooks/{name}", receiver.handle)
    async with (
        FakeSlack(usergroups={GROUP: [GROUP_MEMBER]}) as fake,
        TestServer(hooks, host="127.0.0.1") as rx,
    ):
        receiver.url = str(rx.make_url("")).rstrip("/")
        # webhooks go out through the process's HttpClient, the component that applies the
        # deployment's egress policy: the receiver is on 127.0.0.1, which is refused unless
        # allowed, exactly as a deployment allows an internal receiver
        port = rx.port
        assert port is not None
        settings = settings_for(root, db_url, fake).model_copy(
            update={"http_allow": EgressPolicy.parse(f"127.0.0.1:{port}")}
        )
        container = await build(settings, with_sandbox=False)
        worker = Worker(container, poll_s=0.2, outbox_poll_s=0.05)
        timers = Timers(Timeouts(container.engine), database_url(db_url), scope=f"api-{id(container)}")

        def changed(run_id: str) -> None:
            worker.wake(run_id)
            timers.changed(run_id)

        container.engine.on_change = changed
        surface = SlackSurface(container, settings, wake=worker.wake)
        app = web.Application()
        add_routes(app, container, console=False)
        deps = mount(app, container, webhook_delays=webhook_delays, mcp_wait_s=mcp_wait_s)
        surface.mount(app)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        await surface.start()
        worker.start()
        await timers.start()
        try:
            async with aiohttp.ClientSession() as http:
                slack = SlackEnv(fake, container, surface, str(server.make_url(EVENTS_PATH)), http, False)
                base = str(server.make_url("")).rstrip("/")
                yield ApiEnv(slack, deps, base, receiver, timers, app)
        finally:
            stuck: list[str] = []
            for name, stop in (
                ("timers", timers.stop),
                ("slack surface", surface.close),
                ("worker", worker.stop),
                ("server", server.close),
                ("container", container.close),
            ):
                stuck += await _bounded(name, stop())
            await asyncio.sleep(0)
            assert not stuck, "the teardown did not finish:\n" + "\n".join(stuck)
