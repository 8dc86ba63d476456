"""Background loops of a server process: resume runnable runs and drain the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.wiring import Container
from engine.tasks import stop_task

__all__ = ["Worker"]

log = logging.getLogger("signoff.worker")


class Worker:
    """Polls for runs to resume (crash recovery, decisions from other processes) and sends deliveries."""

    def __init__(self, container: Container, *, poll_s: float = 1.0, outbox_poll_s: float = 0.5) -> None:
        self.container = container
        self.poll_s = poll_s
        self.outbox_poll_s = outbox_poll_s
        self._wake_outbox = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self, run_id: str | None = None) -> None:
        """Something changed: send its messages now rather than at the next poll."""
        self._wake_outbox.set()

    def start(self) -> None:
        """Start the loops."""
        self._tasks = [
            asyncio.create_task(self._recover_loop(), name="signoff-recover"),
            asyncio.create_task(self._outbox_loop(), name="signoff-outbox"),
        ]

    @property
    def alive(self) -> bool:
        """True while both loops run (readiness)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop the loops: recovery at once, the outbox after the row it is sending (up to
        ``grace_s``; a send cut short hands its row back to the other processes)."""
        if self.container.outbox is not None:
            self.container.outbox.stopping = True
        self._wake_outbox.set()
        if self._tasks:
            recover, outbox_loop = self._tasks
            recover.cancel()
            if grace_s > 0:
                await asyncio.wait({outbox_loop}, timeout=grace_s)
        for task in self._tasks:
            task.cancel()  # every one first: a stop cut short still leaves none running on
        for task in self._tasks:
            await stop_task(task)

    async def _recover_loop(self) -> None:
        while True:
            try:
                await self.container.engine.recover()
            except Exception:  # the loop must outlive any one failure
                log.exception("recovery pass failed")
            await asyncio.sleep(self.poll_s)

    async def _outbox_loop(self) -> None:
        outbox = self.container.outbox
        if outbox is None:
            return
        while not outbox.stopping:
            try:
                while await outbox.dispatch_due():
                    pass
            except Exception:  # the loop must outlive any one failure
                log.exception("outbox pass failed")
            # ``asyncio.timeout``, not ``wait_for``, which can lose a cancellation (gh-86296)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.outbox_poll_s):
                    await self._wake_outbox.wait()
            self._wake_outbox.clear()
