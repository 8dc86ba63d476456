"""Live updates for the console (private): server-sent events at ``GET /events?run=ID``.

The stream is the run's audit chain seen from outside (``engine.live``): node started,
succeeded or failed, checkpoint opened, updated (a quorum vote or edit) or decided, run
finished. Each event's ``id`` is its audit sequence number, so a browser that reconnects with
``Last-Event-ID`` gets exactly the events after it. Without a run (``GET /events``) the stream
carries every run's events (the inbox uses it). ``?after=SEQ`` starts after a sequence number
when there is no ``Last-Event-ID``; with neither, the stream starts at the present.

Waiting reuses the HTTP API's ``Waiters`` (``bot/api/_waiting.py``): woken by this process's
engine, by PostgreSQL ``LISTEN`` for other processes' commits, and by a tail of the audit chain
(every 0.2 s on SQLite while anyone watches). Without the API mounted the console starts its
own. An idle stream gets a comment every ``KEEPALIVE_S`` so proxies keep it open.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from bot.api._deps import DEPS
from bot.api._waiting import ANY_RUN, Waiters
from bot.web import _accounts
from bot.web._guard import SECURITY_HEADERS
from bot.web._views import CONTAINER, PERSON, SID
from bot.wiring import Container
from engine.errors import InvalidInput
from engine.live import live_event
from engine.model import AuditEvent

__all__ = ["KEEPALIVE_S", "LIVE", "Live", "events", "install"]

KEEPALIVE_S = 15.0
SQLITE_POLL_S = 0.2
_RETRY_MS = 2000
log = logging.getLogger("signoff.web.events")


@dataclass
class Live:
    """The waiters the streams sleep on, and whether the server is stopping."""

    waiters: Waiters | None = None
    own: bool = False
    closing: bool = False


LIVE = web.AppKey("signoff.web.live", Live)


def install(app: web.Application, container: Container) -> None:
    """Share the API's waiters when it is mounted (else start our own) and end the streams at
    shutdown."""
    live = Live()
    app[LIVE] = live

    async def start(app: web.Application) -> None:
        deps = app.get(DEPS)
        if deps is not None:  # the API's, started by its own start-up hook
            live.waiters = deps.waiters
            return
        waiters = Waiters(container.store, container.feed, poll_s=SQLITE_POLL_S)
        await waiters.start()
        previous = container.engine.on_change

        def changed(run_id: str) -> None:
            if previous is not None:
                previous(run_id)
            waiters.wake(run_id)

        container.engine.on_change = changed
        live.waiters, live.own = waiters, True

    async def shutdown(_: web.Application) -> None:
        live.closing = True
        if live.waiters is not None:
            live.waiters.wake(None)

    async def cleanup(_: web.Application) -> None:
        if live.own and live.waiters is not None:
            await live.waiters.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)


def _start_after(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidInput(f"Last-Event-ID (or after) must be an event id, a whole number, not {raw[:40]!r}")
    return int(raw)


def _frame(event: AuditEvent) -> bytes:
    live = live_event(event)
    if live is None:
        return b""
    return f"id: {live.id}\nevent: {live.type}\ndata: {live.model_dump_json()}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /events?run=ID``: the run's live events as ``text/event-stream``."""
    c = request.app[CONTAINER]
    live = request.app[LIVE]
    run_id = request.query.get("run") or None
    if run_id is not None:
        await c.store.get_run(run_id)  # NotFound: a 404 page
    after = _start_after(request)
    if after is None:
        after = (await c.store.audit_head())[0]
    if live.waiters is None:
        raise web.HTTPServiceUnavailable(text="live updates are not running")
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a proxy must pass each event on at once
        }
    )
    await response.prepare(request)
    cursor = after

    async def fresh() -> list[AuditEvent] | None:
        if live.closing:
            return []  # ends the wait: the server is stopping
        found = await c.store.audit_events(run_id=run_id, after_seq=cursor)
        return found or None

    async def signed_in() -> bool:
        """With a login, the stream lasts as long as its session: sign-out or expiry ends it."""
        if PERSON not in request or SID not in request:
            return True
        return (await _accounts.current(c, request[SID], touch=False)).person is not None

    try:
        await response.write(f"retry: {_RETRY_MS}\n\n".encode())
        while not live.closing:
            found = await live.waiters.until(run_id or ANY_RUN, fresh, KEEPALIVE_S)
            if not await signed_in():  # checked before anything more is sent
                break
            if found is None:
                await response.write(b": keep-alive\n\n")
                continue
            frames = b""
            for event in found:
                cursor = max(cursor, event.seq)
                frames += _frame(event)
            if frames:
                await response.write(frames)
    except (ConnectionResetError, ConnectionError):
        log.debug("an event stream closed (run %s)", run_id)
    return response
