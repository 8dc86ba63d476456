"""The cluster's health probe treats a slow answer as "not yet" (a loaded machine), not as a failure."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.reliability._cluster import Server, healthy


async def test_a_slow_first_answer_is_probed_again(tmp_path: Path) -> None:
    calls = 0

    async def slow_then_fast(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(6)  # longer than one probe may take
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/healthz", slow_then_fast)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
            assert server.port is not None
            await healthy(http, Server("slow", server.port, sleeper, tmp_path / "log"), timeout=30)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert calls >= 2
