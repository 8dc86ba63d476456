"""``signoff serve``: one aiohttp server for the Slack endpoint, the web console and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from bot.config import Settings
from bot.local import LocalSender
from bot.wiring import Container, build
from bot.worker import Worker

__all__ = ["create_app", "serve"]

log = logging.getLogger("signoff.server")


async def create_app(container: Container) -> web.Application:
    """The aiohttp application with every route of this process."""
    from bot.web import add_routes

    app = web.Application()
    add_routes(app, container)
    return app


async def serve(
    settings: Settings, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set)."""
    base_url = settings.public_url or f"http://{settings.host}:{settings.port}"
    sender = LocalSender(base_url)
    container = await build(settings, sender=sender)
    worker = Worker(container)
    container.engine.on_change = worker.wake
    for broken in container.catalog.errors:
        log.error("workflow not loaded:\n%s", broken)
    app = await create_app(container)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    worker.start()
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
        log.info("shutting down")
        await worker.stop()
        await runner.cleanup()
        await container.close()
