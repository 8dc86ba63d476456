"""``engine.tasks.stop_task``: stopping a background task never swallows the stopper's own
cancellation (the flaw of ``suppress(CancelledError)`` around ``await task``), gives up after its
deadline, and logs rather than raises what the task ended with."""

from __future__ import annotations

import asyncio
import logging

import pytest

from engine.tasks import stop_task


class SlowToStop:
    """A background task whose clean-up, once cancelled, waits for ``finish`` (a ``stubborn``
    one goes on waiting through further cancels)."""

    def __init__(self, *, stubborn: bool = False) -> None:
        self.cancelled = asyncio.Event()
        self.finish = asyncio.Event()
        self.stubborn = stubborn
        self.cancels = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancels += 1
            self.cancelled.set()
            while True:
                try:
                    await self.finish.wait()
                except asyncio.CancelledError:
                    self.cancels += 1
                    if self.stubborn:
                        continue
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


async def test_a_task_slow_to_stop_is_named_and_waited_for(caplog: pytest.LogCaptureFixture) -> None:
    slow = SlowToStop(stubborn=True)
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="signoff.tasks"):
        stopping = asyncio.create_task(stop_task(slow.task, warn_after_s=0.01))
        while "still running" not in caplog.text:
            await asyncio.sleep(0.01)
        assert not stopping.done(), "it does not return while the task still runs"
        slow.finish.set()
        await asyncio.wait_for(stopping, 10)
    assert slow.task.cancelled()
    assert slow.task.get_name() in caplog.text
    assert slow.cancels >= 2, "cancelled again after the warning"


async def test_an_error_the_task_ends_with_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def failing_cleanup() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("clean-up failed") from None

    task = asyncio.create_task(failing_cleanup(), name="signoff-test-cleanup")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="signoff.tasks"):
        await stop_task(task)
    assert "signoff-test-cleanup" in caplog.text
    assert "clean-up failed" in caplog.text


async def test_nothing_to_stop() -> None:
    await stop_task(None)
