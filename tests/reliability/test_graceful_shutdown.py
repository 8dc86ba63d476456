"""SIGTERM while a run is in the middle of a slow node (issue 17): readiness goes false first,
the node is cut short at the grace period's end, the run's lease is released (not left to
expire), the process exits 0, and another process continues the run with the same idempotency
key. Before, ``serve`` stopped its loops and exited with the lease still held."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from engine.model import DeliveryStatus, RunStatus, StepStatus
from storage import create_store
from tests.fakes.slack import FakeSlack
from tests.reliability._cluster import GROUP, GROUP_MEMBER, Cluster, Server, write_project

SLOW = """\
id: slow
inputs: {{type: object, properties: {{n: {{type: number}}}}}}
nodes:
  - id: prepare
    type: set
    data: {{n: "{{{{ inputs.n }}}}"}}
  - id: call
    type: http
    request: {{method: POST, url: "{url}/work", json: {{n: "{{{{ inputs.n }}}}"}}}}
  - id: book
    type: set
    data: {{booked: true}}
edges:
  - {{from: prepare, to: call}}
  - {{from: call, to: book}}
"""
GRACE_S = "4"


@dataclass
class Backend:
    """The service the http node calls: answers only once ``release`` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    keys: list[str] = field(default_factory=list)

    async def work(self, request: web.Request) -> web.Response:
        self.keys.append(request.headers.get("Idempotency-Key", ""))
        await self.release.wait()
        return web.json_response({"ok": True})


@pytest.fixture
async def backend() -> AsyncIterator[tuple[Backend, str]]:
    state = Backend()
    app = web.Application()
    app.router.add_post("/work", state.work)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield state, str(server.make_url("")).rstrip("/")
    state.release.set()
    await server.close()


@pytest.fixture
async def cluster(tmp_path: Path, database_url: str, backend: tuple[Backend, str]) -> AsyncIterator[Cluster]:
    write_project(tmp_path)
    (tmp_path / "workflows" / "slow.yml").write_text(SLOW.format(url=backend[1]))
    store = create_store(database_url)
    async with FakeSlack(usergroups={GROUP: [GROUP_MEMBER]}) as fake, aiohttp.ClientSession() as http:
        running = Cluster(tmp_path, database_url, fake, http, store)
        try:
            yield running
        finally:
            running.stop_all()
            await store.close()


async def readyz(cluster: Cluster, server: Server) -> tuple[int, dict[str, Any]]:
    async with cluster.http.get(f"http://127.0.0.1:{server.port}/readyz") as response:
        return response.status, await response.json()


async def test_sigterm_mid_node_releases_the_run_and_another_process_finishes_it(
    cluster: Cluster, backend: tuple[Backend, str]
) -> None:
    service = backend[0]
    # the loopback allowance is for the egress policy of http nodes (SIGNOFF_HTTP_ALLOW)
    env = {"SIGNOFF_SHUTDOWN_GRACE": GRACE_S, "SIGNOFF_HTTP_ALLOW": "127.0.0.1"}
    a = await cluster.start(name="a", env=env)

    async def ready() -> bool:
        return (await readyz(cluster, a))[0] == 200  # once the timers and loops run

    await cluster.until(ready, watch=a)
    assert await cluster.command(a, "run slow n=7") == 200

    async def calling() -> bool:
        return len(service.keys) == 1

    await cluster.until(calling, watch=a)
    [run] = await cluster.store.list_runs()
    assert run.lease_owner is not None, "the replica that runs the node holds the lease"

    os.kill(a.proc.pid, signal.SIGTERM)

    async def draining() -> dict[str, Any] | None:
        status, body = await readyz(cluster, a)
        return body if status == 503 else None

    body = await cluster.until(draining, watch=a, timeout=float(GRACE_S))
    assert "shutdown" in body["failing"]  # (the timers have stopped too)
    code = await asyncio.to_thread(a.proc.wait, 60)
    assert code == 0, a.output()

    # nothing is left leased: another process may continue at once, not after the lease TTL
    released = await cluster.store.get_run(run.id)
    assert (released.lease_owner, released.lease_expires_at) == (None, None), a.output()
    assert released.pending == ["call"]
    assert f"released run {run.id}" in a.output()

    b = await cluster.start(name="b", env=env)
    service.release.set()

    async def finished() -> bool:
        current = await cluster.store.get_run(run.id)
        return current.status.final

    await cluster.until(finished, watch=b)
    done = await cluster.store.get_run(run.id)
    assert done.status is RunStatus.succeeded, b.output()
    steps = await cluster.store.list_steps(run.id)
    assert {s.node_id: (s.status, s.attempt) for s in steps} == {
        "prepare": (StepStatus.succeeded, 1),
        "call": (StepStatus.succeeded, 2),
        "book": (StepStatus.succeeded, 1),
    }
    assert len(service.keys) == 2
    assert service.keys[0] == service.keys[1] != ""

    async def sent() -> bool:
        rows = await cluster.store.list_deliveries(run_id=run.id)
        return bool(rows) and all(d.status is DeliveryStatus.sent for d in rows)

    await cluster.until(sent, watch=b)
