"""Waiting on a condition with a deadline (never on one slow answer)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    """Return once ``check()`` is true; fail after ``timeout`` seconds of trying every 0.1 s."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(0.1)
