"""``GET /metrics`` (private): the Prometheus exposition, for whom the console would answer.

Two ways in, like the console's:

- with ``SIGNOFF_METRICS_TOKEN`` set, a request that carries ``Authorization: Bearer <token>``
  (how Prometheus scrapes replicas it reaches over the network); any other gets 401;
- without it, loopback only, as the login-less console: the peer must be on this machine, and
  ``Host`` one of the names the console answers to (``bot.web._hosts``: this defeats DNS
  rebinding, so a web page cannot read the series through a person's browser). Anything else
  gets 403, naming the setting.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from aiohttp import web

from bot.telemetry._metrics import Metrics
from bot.web._hosts import allowed_hosts, is_loopback, local_port

if TYPE_CHECKING:
    from bot.wiring import Container

__all__ = ["METRICS_PATH", "add_metrics_route"]

METRICS_PATH = "/metrics"
_CONTAINER: web.AppKey[Container] = web.AppKey("signoff.telemetry.container")
_METRICS = web.AppKey("signoff.telemetry.metrics", Metrics)


def add_metrics_route(app: web.Application, container: Container, metrics: Metrics) -> None:
    """Mount ``GET /metrics`` on ``app``."""
    app[_CONTAINER] = container
    app[_METRICS] = metrics
    app.router.add_get(METRICS_PATH, _serve, name="metrics")


async def _serve(request: web.Request) -> web.Response:
    container = request.app[_CONTAINER]
    refusal = _refusal(request, container)
    if refusal is not None:
        return refusal
    metrics = request.app[_METRICS]
    body, content_type = await metrics.scrape(
        container.store, container.clock.now(), request.headers.get("Accept", "")
    )
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def _refusal(request: web.Request, container: Container) -> web.Response | None:
    settings = container.settings
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        given = request.headers.get("Authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return None
        return web.Response(
            status=401,
            text="Refused: /metrics needs the bearer token of SIGNOFF_METRICS_TOKEN.\n",
            headers={"WWW-Authenticate": 'Bearer realm="signoff-metrics"'},
        )
    # a reverse proxy on this machine connects from loopback too: what it forwards is not local
    proxied = any(h in request.headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-IP"))
    if proxied or not is_loopback(request.remote or ""):
        return web.Response(
            status=403,
            text=(
                "Refused: without SIGNOFF_METRICS_TOKEN, /metrics answers only on this machine "
                "(loopback); set SIGNOFF_METRICS_TOKEN to let Prometheus scrape it from elsewhere.\n"
            ),
        )
    host = request.headers.get("Host", "").lower()
    if host not in allowed_hosts(settings, local_port(request, settings.port)):
        return web.Response(
            status=400,
            text=(
                f"Refused: /metrics does not answer to the name {host or '(none)'!r}; use "
                "http://127.0.0.1:PORT/metrics, or list the name in SIGNOFF_ALLOWED_HOSTS.\n"
            ),
        )
    return None
