"""A long poll on one process is woken by a decision committed by another: PostgreSQL's
LISTEN/NOTIFY (with the safety-net poll switched off, so nothing else can wake it), and on
SQLite the short poll of the audit tail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.api import mount
from bot.api._auth import new_key
from bot.config import Settings
from bot.wiring import build
from engine.commands import Decide
from tests.e2e.api_harness import ask_body
from tests.scenario._harness import MANAGER, write_project


def _settings(root: Path, url: str) -> Settings:
    return Settings(
        database_url=url,
        workflows_dir=root / "workflows",
        skills_dir=root / "none",
        roles_file=root / "roles.yml",
        workspace_dir=root / "workspaces",
    )


async def test_a_waiter_is_woken_by_another_process(tmp_path: Path, database_url: str) -> None:
    write_project(tmp_path)
    pg = database_url.startswith("postgresql")
    waiting = await build(_settings(tmp_path, database_url), with_sandbox=False)
    deciding = await build(_settings(tmp_path, database_url), with_sandbox=False)
    app = web.Application()
    # on PostgreSQL only a notification can wake the waiter within its 25 s
    api = mount(app, waiting, safety_s=3600.0 if pg else 5.0)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        assert api.waiters.listening is pg
        assert waiting.clients is not None
        made = await new_key(
            waiting.clients,
            waiting.ids,
            waiting.clock.now(),
            name="agent",
            scopes=["checkpoints:create", "checkpoints:read"],
            as_user=None,
            created_by="test",
        )
        auth = {"Authorization": f"Bearer {made.token}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.post(server.make_url("/api/v1/checkpoints"), json=ask_body(key="x")) as r:
                assert r.status == 201
                cp = await r.json()

            async def wait() -> tuple[int, dict[str, object]]:
                async with http.get(server.make_url(f"/api/v1/checkpoints/{cp['id']}/decision?wait=25")) as r:
                    return r.status, await r.json()

            waiter = asyncio.create_task(wait())
            while api.waiters.waiting == 0:
                await asyncio.sleep(0.01)
            decide = Decide(checkpoint_id=cp["id"], action="approve", actor=MANAGER, channel="cli")
            await deciding.engine.decide(decide)
            status, decision = await asyncio.wait_for(waiter, 30)
        assert status == 200
        if pg:
            assert cp["run_id"] in api.waiters.notified, "woken by the other process's NOTIFY"
        assert (decision["outcome"], decision["channel"]) == ("approved", "cli")
    finally:
        await server.close()
        await deciding.close()
        await waiting.close()
