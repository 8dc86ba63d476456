"""A server with the API and the MCP endpoint stops promptly and cleanly, even with requests
held open: long polls answer at once when it stops, and the MCP session manager (an anyio task
group held in a task of our own) closes without errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bot.api import ApiDeps, mount
from bot.api._auth import new_key
from bot.wiring import Container, build
from tests.e2e.api_harness import ask_body
from tests.fakes.slack import FakeSlack
from tests.scenario._harness import settings_for, write_project

# generous: the point is that it ends at all before a long poll's 25 s, not how fast
CLOSES_WITHIN_S = 20.0


@asynccontextmanager
async def _served(root: Path, db_url: str) -> AsyncIterator[tuple[Container, ApiDeps, TestServer]]:
    write_project(root)
    async with FakeSlack() as fake:
        container = await build(settings_for(root, db_url, fake), with_sandbox=False)
        try:
            app = web.Application()
            deps = mount(app, container, mcp_wait_s=50.0)
            # aiohttp's default: wait up to 60 s for the requests in flight
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            yield container, deps, server
        finally:
            await container.close()


async def _token(container: Container) -> str:
    assert container.clients is not None
    made = await new_key(
        container.clients,
        container.ids,
        container.clock.now(),
        name="agent",
        scopes=["checkpoints:create", "checkpoints:read"],
        as_user=None,
        created_by="test",
    )
    return made.token


async def _until(check: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_held_long_poll_and_the_mcp_endpoint_do_not_hold_a_stopping_server(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with _served(tmp_path, database_url) as (container, deps, server):
        token = await _token(container)
        auth = {"Authorization": f"Bearer {token}"}
        base = str(server.make_url("")).rstrip("/")
        # the MCP endpoint served a request: its session manager's task group has run work
        http = httpx2.AsyncClient(headers=auth, timeout=60)
        async with Client(streamable_http_client(base + "/mcp", http_client=http)) as mcp:
            assert {t.name for t in (await mcp.list_tools()).tools} == {"ask_human", "get_decision"}
        async with aiohttp.ClientSession(headers=auth) as session:
            async with session.post(base + "/api/v1/checkpoints", json=ask_body(key="held")) as created:
                assert created.status == 201, await created.text()
                cp_id = (await created.json())["id"]

            async def poll() -> int:
                url = f"{base}/api/v1/checkpoints/{cp_id}/decision?wait=25"
                async with session.get(url) as held:
                    await held.read()
                    return held.status

            polling = asyncio.create_task(poll())
            await _until(lambda: deps.waiters.waiting > 0)
            closing = asyncio.create_task(server.close())
            done, _ = await asyncio.wait({closing}, timeout=CLOSES_WITHIN_S)
            assert done, f"the server did not stop within {CLOSES_WITHIN_S:.0f} s with a long poll held"
            closing.result()
            assert await asyncio.wait_for(polling, CLOSES_WITHIN_S) == 202, "the held poll answers: pending"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_the_mcp_session_manager_task_ends_with_the_application(
    tmp_path: Path, database_url: str
) -> None:
    async with _served(tmp_path, database_url) as (_, _deps, server):
        assert any(t.get_name() == "signoff-mcp-sessions" for t in asyncio.all_tasks())
        await asyncio.wait_for(server.close(), CLOSES_WITHIN_S)
        assert not any(t.get_name() == "signoff-mcp-sessions" and not t.done() for t in asyncio.all_tasks())
