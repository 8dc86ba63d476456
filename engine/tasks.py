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


async def stop_task(task: asyncio.Future[Any] | None, within_s: float | None = None) -> bool:
    """Cancel ``task`` and wait up to ``within_s`` seconds (None: for as long as it takes) for it
    to end.

    Returns:
        Whether the task has ended. An error it ended with is logged, not raised.

    Raises:
        CancelledError: only when the caller itself is cancelled while waiting.
    """
    if task is None:
        return True
    task.cancel()
    await asyncio.wait({task}, timeout=within_s)
    if not task.done():
        return False
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("background task %s ended with %r", _name(task), error)
    return True


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)
