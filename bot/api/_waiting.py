"""Long polls: a waiter reads the row first, then sleeps until something says its run changed.

Wake-ups come from three places, all ending in ``Waiters.wake(run_id)``:

* this process's engine, after every commit (``Engine.on_change``);
* other processes, on PostgreSQL: ``pg_notify`` in the deciding transaction, one LISTEN
  connection per process (``ChangeFeed``);
* a tail of the audit chain, read every ``poll_s`` while anyone waits: on SQLite it is how
  other processes' decisions arrive (0.2 s by default); on PostgreSQL it is only a safety net
  for a lost notification (every 5 s).

A waiter registers its event before it reads, so a change committed between the read and the
wait still wakes it. Idle waiters cost no CPU: they sleep on an ``asyncio.Event``.

When the server stops (``release``, on the application's shutdown, before aiohttp waits for
the requests in flight), every waiter answers at once with what it has, as if its wait had
ended: a long poll never holds a stopping server for its remaining seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from engine.clients import ChangeFeed
from engine.ports import RunStore
from engine.tasks import stop_task

__all__ = ["ANY_RUN", "Waiters"]

T = TypeVar("T")
ANY_RUN = "*"
"""The run id to wait on to be woken by a change of any run (the console's inbox)."""
_MAX_BACKLOG = 1000
_STOP_S = 5.0  # shutting down never waits longer on a loop that does not stop
log = logging.getLogger("signoff.api.waiting")


class Waiters:
    """Events per run id, and the loops that set them."""

    def __init__(
        self, store: RunStore, feed: ChangeFeed | None, *, poll_s: float, safety_s: float = 5.0
    ) -> None:
        self.store = store
        self.feed = feed
        self.poll_s = poll_s
        self.safety_s = safety_s
        self._events: dict[str, set[asyncio.Event]] = {}
        self._stop_feed: Callable[[], Awaitable[None]] | None = None
        self._tail: asyncio.Task[None] | None = None
        self._someone = asyncio.Event()
        self._seq = 0
        self.listening = False
        self.closing = False
        self.notified: set[str] = set()  # runs other processes told us about (for tests, bounded)

    async def start(self) -> None:
        """Subscribe to other processes' changes and start the audit tail."""
        self._seq = (await self.store.audit_head())[0]
        if self.feed is not None:
            self._stop_feed = await self.feed.subscribe(self._notified)
        self.listening = self._stop_feed is not None
        self._tail = asyncio.create_task(self._follow(), name="signoff-api-tail")

    async def stop(self) -> None:
        """Stop listening; waiters still waiting time out as usual."""
        await stop_task(self._tail, warn_after_s=_STOP_S)
        if self._stop_feed is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_feed(), _STOP_S)

    def release(self) -> None:
        """The server is stopping: every wait, current or new, answers after one check."""
        self.closing = True
        self.wake(None)

    def _notified(self, run_id: str | None) -> None:
        if run_id is not None and run_id in self._events and len(self.notified) < _MAX_BACKLOG:
            self.notified.add(run_id)
        self.wake(run_id)

    def wake(self, run_id: str | None = None) -> None:
        """Something about ``run_id`` changed (None: anything may have)."""
        if run_id is None:
            groups = list(self._events.values())
        else:
            groups = [self._events.get(run_id, set()), self._events.get(ANY_RUN, set())]
        for events in groups:
            for event in events:
                event.set()

    @property
    def waiting(self) -> int:
        """How many requests are waiting now."""
        return sum(len(e) for e in self._events.values())

    async def until(self, run_id: str, check: Callable[[], Awaitable[T | None]], wait_s: float) -> T | None:
        """``check()`` until it returns something, for ``wait_s`` seconds at most."""
        event = asyncio.Event()
        self._events.setdefault(run_id, set()).add(event)
        self._someone.set()
        deadline = time.monotonic() + wait_s
        try:
            while True:
                event.clear()
                found = await check()
                left = deadline - time.monotonic()
                if found is not None or left <= 0 or self.closing:
                    return found
                with contextlib.suppress(TimeoutError):  # not wait_for: it can lose a cancellation
                    async with asyncio.timeout(left):
                        await event.wait()
        finally:
            events = self._events.get(run_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[run_id]

    async def _follow(self) -> None:
        """Read new audit events while anyone waits and wake the runs they name."""
        interval = self.safety_s if self.listening else self.poll_s
        while True:
            if not self._events:
                self._someone.clear()
                await self._someone.wait()
                # the tail goes on from where it stopped, so a change committed between a new
                # waiter's first read and now is not skipped; after a long idle it wakes everyone
                head = (await self.store.audit_head())[0]
                if head - self._seq > _MAX_BACKLOG:
                    self._seq = head
                    self.wake(None)
            await asyncio.sleep(interval)
            try:
                events = await self.store.audit_events(after_seq=self._seq)
            except Exception:  # the safety net must outlive a failing database
                log.exception("reading the audit tail failed")
                continue
            for event in events:
                self._seq = max(self._seq, event.seq)
                if event.run_id is not None:
                    self.wake(event.run_id)
