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
from bot.workflow_files import FolderWatcher
from engine import faults
from engine.timeouts import Timeouts

__all__ = ["create_app", "serve"]

if TYPE_CHECKING:
    from bot.slack import SlackSurface
    from bot.telemetry._tracing import Tracing

log = logging.getLogger("signoff.server")
REQUESTS_STOP_S = 5.0
"""How long a stopping server waits for the requests in flight (after its long polls answered)."""


async def create_app(
    container: Container, readiness: Readiness | None = None, *, tracing: Tracing | None = None
) -> web.Application:
    """The aiohttp application with every route of this process.

    ``/healthz``, ``/readyz`` and ``/metrics`` always; the HTTP API; the web console in local
    mode, and in Slack mode when people sign in to it (``SIGNOFF_AUTH``); Slack's endpoint is
    mounted by the Slack surface. The process's telemetry observes its engine from here on:
    Prometheus series, one log line per engine event, and spans when ``tracing`` is given.
    """
    from bot.api import mount
    from bot.telemetry import EventLog, Metrics, add_metrics_route
    from bot.web import add_routes

    app = web.Application()
    add_health_routes(app, readiness or Readiness(container))
    settings = container.settings
    add_routes(app, container, console=not settings.slack_enabled or settings.login.enabled)
    mount(app, container)
    metrics = container.metrics or Metrics()
    container.metrics = metrics
    container.engine.observers += [metrics, EventLog()]
    add_metrics_route(app, container, metrics)
    if tracing is not None:
        container.engine.observers.append(tracing)
        app.middlewares.insert(0, tracing.middleware)  # outermost: the span covers every check
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
    from bot.telemetry import tracing as make_tracing

    spans = make_tracing(settings.otel_endpoint)
    container = await build(settings, sender=None if settings.slack_enabled else LocalSender(base_url))
    worker = Worker(container)
    timers = Timers(
        Timeouts(container.engine, queue_channel=settings.queue_channel),
        database_url(settings.database_url),
        feed=container.feed,
    )
    container.engine.on_change = _fan_out(worker.wake, timers.changed)
    slack = _slack(container, settings, worker)
    readiness = Readiness(
        container,
        loops=lambda: None if worker.alive and timers.running else "the timers or the worker loops stopped",
        # one workspace: its token answers auth.test; many: each is checked as its requests come
        slack_auth=None if slack is None or slack.authorizer is None else slack.client.auth_test,
    )
    try:
        # before anything connects: an unusable console secret key stops the start here
        app = await create_app(container, readiness, tracing=spans)
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
    elif slack is not None and slack.installs is not None:
        slack.mount_install(app)
    # long polls answer as the server stops (the API's shutdown hook); any other request still
    # running after REQUESTS_STOP_S is cancelled, not waited for aiohttp's default 60 s
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=REQUESTS_STOP_S)
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
    watcher = FolderWatcher(
        container.store,
        container.catalog,
        container.clock,
        settings.workflows_dir,
        interval_s=settings.workflows_reload_s,
    )
    watcher.start()
    added = await timers.start()
    log.info("timers reconciled: %d job(s) added", added)
    mode = "local mode (no Slack credentials)"
    if settings.slack_enabled:
        mode = "Slack, workspaces install at /slack/install" if settings.slack_multi else "Slack"
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
        await watcher.stop()
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
        if spans is not None:
            spans.shutdown()  # exports the spans still buffered
