"""Stopping a process without losing work (private: use ``engine.service.Engine``).

On SIGTERM the server calls ``finish_driving``: no node starts any more, the runs being
driven finish the node they are in and are released, and whatever is still running when the
grace period ends is cancelled, which releases its lease too (``Driving.drive``). A released
run keeps its pending work, so another process's recovery loop continues it at once; a node
cut short shows up there as a retried attempt with the same idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from engine._driving import Driving

__all__ = ["Draining"]

log = logging.getLogger("signoff.engine")
# after cancelling, how long to wait for the cancelled runs to give their leases back
_RELEASE_S = 10.0


class Draining(Driving):
    """``finish_driving``: the engine's part of a graceful shutdown."""

    @property
    def driving(self) -> list[str]:
        """Ids of the runs this process is driving right now."""
        return list(self._driving)

    async def finish_driving(self, grace_s: float) -> list[str]:
        """Stop starting nodes and wait up to ``grace_s`` for the runs being driven.

        Returns:
            The ids of the runs that were still running a node at the deadline; they were
            cancelled and their leases released.
        """
        self.draining = True
        # ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` can lose a
        # cancellation of the caller that lands as the event is set (CPython gh-86296)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        stuck = dict(self._driving)
        for run_id, task in stuck.items():
            log.warning("run %s still running a node after %.0fs: cancelling it", run_id, grace_s)
            if task is not None:
                task.cancel()
        if stuck:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RELEASE_S):
                    await self._idle.wait()
        return list(stuck)
