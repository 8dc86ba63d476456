"""``engine.tasks.stop_task``: stopping a background task never swallows the stopper's own
cancellation (the flaw of ``suppress(CancelledError)`` around ``await task``), gives up after its
deadline, and logs rather than raises what the task ended with."""

from __future__ import annotations

import asyncio
import logging

import pytest

from engine.tasks import stop_task


class SlowToStop:
    """A background task whose clean-up, once cancelled, waits for ``finish``."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.finish = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            await self.finish.wait()
            raise


async def test_the_stoppers_own_cancellation_is_not_swallowed() -> None:
    slow = SlowToStop()
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop_task(slow.task))
    await asyncio.wait_for(slow.cancelled.wait(), 10)
    stopper.cancel()  # a shutdown deadline, a test's teardown
    slow.finish.set()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    await asyncio.wait({slow.task}, timeout=10)
    assert slow.task.cancelled()


async def test_it_gives_up_at_its_deadline_and_says_so() -> None:
    slow = SlowToStop()
    await asyncio.sleep(0)
    assert await stop_task(slow.task, within_s=0.05) is False
    assert slow.cancelled.is_set()
    slow.finish.set()
    assert await stop_task(slow.task, within_s=10) is True


async def test_an_error_the_task_ends_with_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def failing_cleanup() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("clean-up failed") from None

    task = asyncio.create_task(failing_cleanup(), name="signoff-test-cleanup")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="signoff.tasks"):
        assert await stop_task(task) is True
    assert "signoff-test-cleanup" in caplog.text
    assert "clean-up failed" in caplog.text


async def test_nothing_to_stop() -> None:
    assert await stop_task(None) is True
