"""Who may read ``/metrics``: a bearer token when one is set, else this machine only (as the console)."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import SecretStr

from bot.server import create_app
from bot.wiring import Container
from tests.e2e._console import serving

TOKEN = "metrics-token-0123456789abcdef"


async def _app(container: Container, **settings: Any) -> web.Application:
    wired = dataclasses.replace(container, settings=container.settings.model_copy(update=settings))
    return await create_app(wired)


async def test_loopback_without_a_token_and_only_under_the_consoles_names(container: Container) -> None:
    async with serving(await _app(container)) as server, aiohttp.ClientSession() as http:
        url = str(server.make_url("/metrics"))
        async with http.get(url) as response:
            assert response.status == 200
            assert "signoff_checkpoints_open 0.0" in await response.text()
        # a page on evil.example rebound to 127.0.0.1 must not read it through a browser
        async with http.get(url, headers={"Host": f"evil.example:{server.port}"}) as response:
            assert response.status == 400
            assert "SIGNOFF_ALLOWED_HOSTS" in await response.text()
        # a reverse proxy on this machine connects from loopback: what it forwards is not local
        for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}):
            async with http.get(url, headers=header) as response:
                assert response.status == 403
                assert "SIGNOFF_METRICS_TOKEN" in await response.text()


async def test_a_token_is_required_when_set(container: Container) -> None:
    app = await _app(container, metrics_token=SecretStr(TOKEN))
    async with serving(app) as server, aiohttp.ClientSession() as http:
        url = str(server.make_url("/metrics"))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            async with http.get(url, headers=headers) as response:
                assert response.status == 401, headers
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert TOKEN not in await response.text()
        # with the token, any name and any peer: Prometheus scrapes replicas by address
        good = {"Authorization": f"Bearer {TOKEN}", "Host": f"10.0.0.7:{server.port}"}
        async with http.get(url, headers=good) as response:
            assert response.status == 200
            assert "# TYPE signoff_runs_started_total counter" in await response.text()
        # OpenMetrics when Prometheus asks for it
        openmetrics = {**good, "Accept": "application/openmetrics-text; version=1.0.0"}
        async with http.get(url, headers=openmetrics) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await response.text()).endswith("# EOF\n")


class _Peer:
    """A transport whose peer is ``address`` (a request from another machine, or this one)."""

    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": (self.address, 40000), "sockname": ("192.0.2.1", 3000)}.get(name, default)

    def is_closing(self) -> bool:
        return False


async def test_another_machine_is_refused_without_a_token(container: Container) -> None:
    app = await _app(container)
    handler = next(r for r in app.router.routes() if r.name == "metrics").handler
    request = make_mocked_request(
        "GET", "/metrics", headers={"Host": "127.0.0.1:3000"}, app=app, transport=_Peer("203.0.113.5")
    )
    response = await handler(request)
    assert isinstance(response, web.Response)
    assert response.status == 403
    assert "SIGNOFF_METRICS_TOKEN" in str(response.text)
    from_here = make_mocked_request(
        "GET", "/metrics", headers={"Host": "127.0.0.1:3000"}, app=app, transport=_Peer("127.0.0.1")
    )
    assert (await handler(from_here)).status == 200
