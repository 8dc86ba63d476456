"""``signoff serve``: one aiohttp server for the Slack endpoint, the web console and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.config import ConfigError, Settings, port_problem
from bot.health import Readiness, add_health_routes
from bot.lifecycle import shut_down
from bot.local import LocalSender
from bot.scheduler import Timers
from bot.wiring import Container, build, database_url
from bot.worker import Worker
from engine import faults
from engine.timeouts import Timeouts

__all__ = ["create_app", "serve"]

if TYPE_CHECKING:
    from bot.slack import SlackSurface

log = logging.getLogger("signoff.server")


async def create_app(container: Container, readiness: Readiness | None = None) -> web.Application:
    """The aiohttp application with every route of this process.

    ``/healthz`` and ``/readyz`` always; the HTTP API; the web console in local mode, and in
    Slack mode when people sign in to it (``SIGNOFF_AUTH``); Slack's endpoint is mounted by the
    Slack surface.
    """
    from bot.api import mount
    from bot.web import add_routes

    app = web.Application()
    add_health_routes(app, readiness or Readiness(container))
    settings = container.settings
    add_routes(app, container, console=not settings.slack_enabled or settings.login.enabled)
    mount(app, container)
    return app


def _slack(container: Container, settings: Settings, worker: Worker) -> SlackSurface | None:
    """The Slack surface when both Slack credentials are set; it takes over the outbox."""
    if not settings.slack_enabled:
        return None
    from bot.slack import SlackSurface

    return SlackSurface(container, settings, wake=worker.wake)


def _fan_out(*observers: Callable[[str], None]) -> Callable[[str], None]:
    def notify(run_id: str) -> None:
        for observer in observers:
            observer(run_id)

    return notify


def _arm_faults(settings: Settings) -> None:
    """Crash points for the fault-injection tests; only ``SIGNOFF_TEST_FAULTS`` arms them."""
    try:
        faults.configure(settings.fault_points)
    except ValueError as exc:
        raise ConfigError(f"SIGNOFF_TEST_FAULTS: {exc}") from exc
    if settings.fault_points:
        log.warning("test fault points armed: %s (this process will crash on purpose)", settings.fault_points)


async def serve(
    settings: Settings, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set).

    Raises:
        ConfigError: before anything starts, for a console that would be exposed without a
            login (local mode on a non-loopback ``SIGNOFF_HOST``, ``SIGNOFF_WEB_CONSOLE=on``
            in Slack mode), and for unusable settings.
    """
    from bot.web import refuse_exposure

    refuse_exposure(settings)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base_url = settings.public_url or f"http://{host}:{settings.port}"
    _arm_faults(settings)
    container = await build(settings, sender=None if settings.slack_enabled else LocalSender(base_url))
    worker = Worker(container)
    timers = Timers(
        Timeouts(container.engine, queue_channel=settings.queue_channel), database_url(settings.database_url)
    )
    container.engine.on_change = _fan_out(worker.wake, timers.changed)
    slack = _slack(container, settings, worker)
    readiness = Readiness(
        container,
        loops=lambda: None if worker.alive and timers.running else "the timers or the worker loops stopped",
        slack_auth=None if slack is None else slack.client.auth_test,
    )
    try:
        # before anything connects: an unusable console secret key stops the start here
        app = await create_app(container, readiness)
    except BaseException:
        await container.close()
        raise
    if slack is not None:
        try:
            await slack.start()
        except BaseException:
            await container.close()
            raise
    for broken in container.catalog.errors:
        log.error("workflow not loaded:\n%s", broken)
    if slack is not None and not slack.socket_mode:
        slack.mount(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:  # the port is taken (or the address not ours): one line naming the settings
        await runner.cleanup()
        if slack is not None:
            await slack.close()
        await container.close()
        raise ConfigError(port_problem(settings.host, settings.port, exc)) from None
    worker.start()
    added = await timers.start()
    log.info("timers reconciled: %d job(s) added", added)
    mode = "Slack" if settings.slack_enabled else "local mode (no Slack credentials)"
    log.info(
        "Signoff is listening on %s — %s, %d workflow(s): %s",
        base_url,
        mode,
        len(container.catalog.ids()),
        ", ".join(container.catalog.ids()) or "none",
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await shut_down(
            readiness=readiness,
            engine=container.engine,
            worker=worker,
            timers=timers,
            slack=slack,
            grace_s=settings.shutdown_grace_s,
        )
        await runner.cleanup()
        await container.close()
