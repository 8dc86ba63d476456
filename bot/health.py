"""``/healthz`` (the process answers) and ``/readyz`` (this replica may take traffic).

``/healthz`` is a liveness probe: 200 while the event loop runs, whatever the database does, so
that an orchestrator does not restart every replica during a database outage. ``/readyz`` is
the readiness probe a load balancer uses: 200 when every check passes, else 503 with a JSON
body naming what is not ready:

* ``database``: a one-row query answers;
* ``schema``: the schema is this code's (or newer), not older (``signoff db upgrade``);
* ``scheduler``: the timers and the worker loops (recovery, outbox) run;
* ``slack``: ``auth.test`` accepts the bot token (when Slack is on; an answer is reused for
  ``slack_ttl_s`` seconds, a failure is retried at the next probe);
* ``shutdown``: present, and failing, from SIGTERM on (graceful shutdown, ``bot/lifecycle.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.wiring import Container, SchemaStatus

__all__ = ["READINESS", "Readiness", "add_health_routes"]

log = logging.getLogger("signoff.health")
READINESS: web.AppKey[Readiness] = web.AppKey("signoff.readiness")
OK = "ok"
# a check that takes longer than this is "not ready" (a probe must answer quickly)
_CHECK_TIMEOUT_S = 3.0


class Readiness:
    """The checks behind ``/readyz``; ``signoff serve`` adds the parts it starts.

    Args:
        container: the wired process (its store, and the schema probe of a SQL store).
        loops: None when the timers and worker loops run, else what is wrong with them.
        slack_auth: calls ``auth.test`` (raises when Slack refuses the token or cannot be reached).
        slack_ttl_s: how long a successful ``auth.test`` answer is reused.
    """

    def __init__(
        self,
        container: Container,
        *,
        loops: Callable[[], str | None] | None = None,
        slack_auth: Callable[[], Awaitable[Any]] | None = None,
        slack_ttl_s: float = 30.0,
    ) -> None:
        self.container = container
        self.loops = loops
        self.slack_auth = slack_auth
        self.slack_ttl_s = slack_ttl_s
        self.draining = False
        self._slack_ok_at: float | None = None
        self._was_ready: bool | None = None

    async def checks(self) -> dict[str, str]:
        """Check name -> ``"ok"`` or what is wrong, every check run concurrently."""
        probes: dict[str, Awaitable[str | None]] = {"database": self._database()}
        if self.container.schema is not None:
            probes["schema"] = _schema(self.container.schema)
        if self.loops is not None:
            probes["scheduler"] = _sync(self.loops)
        if self.slack_auth is not None:
            probes["slack"] = self._slack(self.slack_auth)
        results = await asyncio.gather(*(_bounded(probe) for probe in probes.values()))
        found = {name: problem or OK for name, problem in zip(probes, results, strict=True)}
        if self.draining:
            found["shutdown"] = "draining: the process is shutting down"
        self._log_change(found)
        return found

    async def _database(self) -> str | None:
        await self.container.store.list_runs(limit=1)
        return None

    async def _slack(self, auth_test: Callable[[], Awaitable[Any]]) -> str | None:
        now = time.monotonic()
        if self._slack_ok_at is not None and now - self._slack_ok_at < self.slack_ttl_s:
            return None
        self._slack_ok_at = None
        await auth_test()
        self._slack_ok_at = time.monotonic()
        return None

    def _log_change(self, found: dict[str, str]) -> None:
        ready = all(v == OK for v in found.values())
        if ready != self._was_ready:
            if ready:
                log.info("ready")
            else:
                log.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in found.items() if v != OK))
        self._was_ready = ready


async def _schema(read: Callable[[], Awaitable[SchemaStatus]]) -> str | None:
    status = await read()
    return None if status.usable else status.describe()


async def _sync(check: Callable[[], str | None]) -> str | None:
    return check()


async def _bounded(probe: Awaitable[str | None]) -> str | None:
    try:
        return await asyncio.wait_for(probe, _CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {_CHECK_TIMEOUT_S:g}s"
    except Exception as exc:  # any failure of a dependency is "not ready", never a 500
        return f"{type(exc).__name__}: {exc}"


async def _healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers (it does not look at the database)."""
    return web.json_response({"ok": True})


async def _readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when every check passes, else 503 naming the ones that fail."""
    found = await request.app[READINESS].checks()
    failing = sorted(name for name, value in found.items() if value != OK)
    body = {"ready": not failing, "checks": found, "failing": failing}
    return web.json_response(body, status=503 if failing else 200)


def add_health_routes(app: web.Application, readiness: Readiness) -> None:
    """Mount ``GET /healthz`` and ``GET /readyz`` on ``app``."""
    app[READINESS] = readiness
    app.router.add_get("/healthz", _healthz, name="health.live")
    app.router.add_get("/readyz", _readyz, name="health.ready")
