"""Stopping a background task without losing the stopper's own cancellation.

``task.cancel()`` then ``with suppress(CancelledError): await task`` has a flaw: when whoever is
stopping is itself cancelled while it waits (a shutdown with a deadline, a test's teardown), the
``suppress`` swallows that cancellation too and the caller carries on as if nothing happened.
``asyncio.wait_for`` on Python 3.11 can lose a cancellation the same way (CPython gh-86296).
``stop_task`` waits with ``asyncio.wait``, which never raises the task's outcome, so only the
caller's own cancellation can come out of it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["stop_task"]

log = logging.getLogger("signoff.tasks")


async def stop_task(task: asyncio.Future[Any] | None, warn_after_s: float | None = None) -> None:
    """Cancel ``task`` and wait until it has ended.

    A task still running ``warn_after_s`` seconds after the cancel is named in a warning and
    cancelled again, and the wait goes on: what it holds (a connection, a lease) is not let go
    of while it runs. An error the task ended with is logged, not raised.

    Raises:
        CancelledError: only when the caller itself is cancelled while waiting.
    """
    if task is None:
        return
    task.cancel()
    await asyncio.wait({task}, timeout=warn_after_s)
    while not task.done():
        log.warning("background task %s still running %ss after it was cancelled", _name(task), warn_after_s)
        task.cancel()
        await asyncio.wait({task}, timeout=warn_after_s)
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("background task %s ended with %r", _name(task), error)


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)
