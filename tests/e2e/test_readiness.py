"""``/readyz`` says whether this replica may take traffic and names what is not ready;
``/healthz`` only says the process answers (an orchestrator must not restart every replica
during a database outage)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.health import Readiness
from bot.server import create_app
from bot.wiring import Container, build
from storage import migrate
from tests.conftest import drop_pg_schema, pg_schema_url
from tests.e2e._tcp_proxy import TcpProxy
from tests.e2e._until import until
from tests.fakes.slack import FakeSlack

Client = TestClient[Any, Any]


def settings_for(tmp_path: Path, url: str) -> Settings:
    return Settings(
        database_url=url,
        workflows_dir=tmp_path / "workflows",
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        auto_migrate=False,
    )


async def probe(client: Client, path: str = "/readyz") -> tuple[int, dict[str, Any]]:
    response = await client.get(path)
    body: dict[str, Any] = await response.json()
    return response.status, body


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A migrated PostgreSQL schema, reached through a proxy the test can cut."""
    schema = f"signoff_ready_{uuid.uuid4().hex[:10]}"
    url = pg_schema_url(schema)
    migrate(url)
    parsed = make_url(url)
    async with TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
        via = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        yield proxy, via
    drop_pg_schema(schema)


@pytest.fixture
async def served(tmp_path: Path, proxied: tuple[TcpProxy, str]) -> AsyncIterator[tuple[Client, Container]]:
    container = await build(settings_for(tmp_path, proxied[1]), with_sandbox=False)
    app = await create_app(container, Readiness(container))
    try:
        async with TestClient(TestServer(app)) as client:
            yield client, container
    finally:
        await container.close()


@pytest.mark.postgres
async def test_readyz_is_false_while_the_database_is_down_and_true_after(
    proxied: tuple[TcpProxy, str], served: tuple[Client, Container]
) -> None:
    proxy, client = proxied[0], served[0]
    assert await probe(client) == (
        200,
        {"ready": True, "checks": {"database": "ok", "schema": "ok"}, "failing": []},
    )

    await proxy.down()
    seen: dict[str, Any] = {}

    async def not_ready() -> bool:
        status, body = await probe(client)
        seen.update(body)
        return status == 503

    await until(not_ready)
    assert seen["ready"] is False
    assert "database" in seen["failing"]
    assert seen["checks"]["database"] != "ok"
    # liveness does not follow the database
    assert await probe(client, "/healthz") == (200, {"ok": True})

    await proxy.up()
    # each database thread finds its connection cut at its next call (one failed call each),
    # then reconnects: wait until the answer is steadily yes
    streak = [0]

    async def ready() -> bool:
        status, body = await probe(client)
        streak[0] = streak[0] + 1 if status == 200 else 0
        if status == 200:
            assert body["checks"] == {"database": "ok", "schema": "ok"}
        return streak[0] >= 10

    await until(ready)


async def readiness_app(tmp_path: Path, readiness: Callable[[Container], Readiness]) -> AsyncIterator[Client]:
    container = await build(
        settings_for(tmp_path, f"sqlite:///{tmp_path / 'r.db'}").model_copy(update={"auto_migrate": True}),
        with_sandbox=False,
    )
    app = await create_app(container, readiness(container))
    try:
        async with TestClient(TestServer(app)) as client:
            yield client
    finally:
        await container.close()


async def test_readyz_names_stopped_loops_a_refused_slack_token_and_a_shutdown(tmp_path: Path) -> None:
    loops: list[str | None] = [None]
    async with FakeSlack() as fake:
        slack = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        check: Readiness | None = None

        def make(container: Container) -> Readiness:
            nonlocal check
            check = Readiness(container, loops=lambda: loops[0], slack_auth=slack.auth_test, slack_ttl_s=0)
            return check

        async for client in readiness_app(tmp_path, make):
            assert check is not None
            status, body = await probe(client)
            assert (status, body["checks"]) == (
                200,
                {"database": "ok", "schema": "ok", "scheduler": "ok", "slack": "ok"},
            )
            fake.fail("auth.test", error="invalid_auth")
            loops[0] = "the timers or the worker loops stopped"
            status, body = await probe(client)
            assert status == 503
            assert body["failing"] == ["scheduler", "slack"]
            assert "invalid_auth" in body["checks"]["slack"]
            loops[0] = None
            assert (await probe(client))[0] == 200  # the next auth.test answers ok again
            check.draining = True
            status, body = await probe(client)
            assert (status, body["failing"]) == (503, ["shutdown"])
            assert await probe(client, "/healthz") == (200, {"ok": True})


async def test_a_good_slack_answer_is_reused_for_a_while(tmp_path: Path) -> None:
    async with FakeSlack() as fake:
        slack = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        async for client in readiness_app(
            tmp_path, lambda c: Readiness(c, slack_auth=slack.auth_test, slack_ttl_s=300)
        ):
            for _ in range(5):
                assert (await probe(client))[0] == 200
            assert len(fake.calls_to("auth.test")) == 1
