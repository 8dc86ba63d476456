"""Cross-process wake-ups on PostgreSQL: ``pg_notify`` inside the committing transaction, and one
``LISTEN`` connection per process.

A notification is delivered only when its transaction commits, so a woken waiter always finds
the change it was woken for. Sent when a checkpoint opens (other processes' timers plan it,
``bot/scheduler.py``) or resolves and when a run ends (long polls, ``bot/api``). SQLite has
nothing like it: there, in-process wake-ups and a short poll of the audit tail stand in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import URL

from engine.tasks import stop_task
from storage._db import Tx
from storage._sql import Sql

__all__ = ["CHANNEL", "PgListener", "notify"]

CHANNEL = "signoff_decisions"
_NOTIFY = Sql(f"SELECT pg_notify('{CHANNEL}', :run_id)")
_RETRY_S = (0.2, 1.0, 5.0)
log = logging.getLogger("signoff.storage.listen")


def notify(tx: Tx, run_id: str) -> None:
    """Tell every listening process, on commit, that ``run_id`` changed (PostgreSQL only)."""
    if tx.pg:
        tx.run(_NOTIFY, {"run_id": run_id})


class PgListener:
    """One ``LISTEN`` connection that calls ``wake(run_id)``; reconnects after a failure and then
    calls ``wake(None)`` (a notification may have been missed meanwhile)."""

    def __init__(self, url: URL, wake: Callable[[str | None], None]) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._wake = wake
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> Callable[[], Awaitable[None]]:
        """Connect and listen (waits for the first connection, a few seconds at most)."""
        self._task = asyncio.create_task(self._run(), name="signoff-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5.0)
        return self.stop

    async def stop(self) -> None:
        """Close the connection."""
        await stop_task(self._task, warn_after_s=5.0)
        self._task = None

    async def _run(self) -> None:
        import psycopg

        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        self._wake(None)
                    failures = 0
                    self._ready.set()
                    async for note in conn.notifies():
                        self._wake(note.payload or None)
            except psycopg.Error as exc:
                delay = _RETRY_S[min(failures, len(_RETRY_S) - 1)]
                failures += 1
                log.warning("LISTEN %s lost (%s); reconnecting in %.1fs", CHANNEL, exc, delay)
                await asyncio.sleep(delay)
