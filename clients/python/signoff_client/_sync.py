"""``Signoff``: the same client for synchronous code.

It runs an ``AsyncSignoff`` on an event loop of its own, in a daemon thread, so it works from
plain scripts and from threads, and behaves exactly like the async client (one implementation).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, overload

from pydantic import BaseModel

from signoff_client._async import MAX_ROUND_S, Assignee, AsyncSignoff
from signoff_client._models import Checkpoint, CheckpointPage, Decision, Run, RunPage, RunResult

__all__ = ["Signoff"]

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="signoff-client", daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, R]) -> R:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class SyncCheckpoints:
    """``sg.checkpoints`` of the synchronous client (see ``signoff_client.Checkpoints``)."""

    def __init__(self, client: AsyncSignoff, loop: _Loop) -> None:
        self._c = client.checkpoints
        self._loop = loop

    def create(self, prompt: str, *, key: str, assignee: Assignee, **fields: Any) -> Checkpoint:
        """Ask a person: open a checkpoint (idempotent by ``key``)."""
        return self._loop.run(self._c.create(prompt, key=key, assignee=assignee, **fields))

    def get(self, checkpoint_id: str) -> Checkpoint:
        """One checkpoint, with its decision once resolved."""
        return self._loop.run(self._c.get(checkpoint_id))

    @overload
    def wait(self, checkpoint_id: str, *, timeout: float | None = None) -> Decision[Any]: ...
    @overload
    def wait(
        self, checkpoint_id: str, *, response_model: type[T], timeout: float | None = None
    ) -> Decision[T]: ...
    def wait(
        self, checkpoint_id: str, *, response_model: type[T] | None = None, timeout: float | None = None
    ) -> Decision[T] | Decision[Any]:
        """The decision, waiting in long-poll rounds (``WaitTimeout`` after ``timeout`` s)."""
        if response_model is None:
            return self._loop.run(self._c.wait(checkpoint_id, timeout=timeout))
        return self._loop.run(self._c.wait(checkpoint_id, response_model=response_model, timeout=timeout))

    def cancel(self, checkpoint_id: str, *, reason: str | None = None) -> Checkpoint:
        """Withdraw an ask."""
        return self._loop.run(self._c.cancel(checkpoint_id, reason=reason))

    def list(
        self,
        *,
        status: Literal["open", "resolved", "all"] = "open",
        assignee: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> CheckpointPage:
        """One page of checkpoints, newest first."""
        return self._loop.run(self._c.list(status=status, assignee=assignee, limit=limit, cursor=cursor))


class SyncRuns:
    """``sg.runs`` of the synchronous client (see ``signoff_client.Runs``)."""

    def __init__(self, client: AsyncSignoff, loop: _Loop) -> None:
        self._r = client.runs
        self._loop = loop

    def start(
        self,
        workflow: str,
        inputs: Mapping[str, Any] | BaseModel | None = None,
        *,
        key: str,
        callback_url: str | None = None,
    ) -> Run:
        """Start a catalog workflow (idempotent by ``key``)."""
        return self._loop.run(self._r.start(workflow, inputs, key=key, callback_url=callback_url))

    def get(self, run_id: str) -> Run:
        """One run."""
        return self._loop.run(self._r.get(run_id))

    def wait(self, run_id: str, *, timeout: float | None = None) -> RunResult:
        """The result once the run ends (``WaitTimeout`` after ``timeout`` s)."""
        return self._loop.run(self._r.wait(run_id, timeout=timeout))

    def cancel(self, run_id: str, *, reason: str | None = None) -> Run:
        """Cancel a run."""
        return self._loop.run(self._r.cancel(run_id, reason=reason))

    def list(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first."""
        return self._loop.run(self._r.list(status=status, workflow=workflow, limit=limit, cursor=cursor))


class Signoff:
    """The synchronous client; the same arguments as ``AsyncSignoff``.

    Example::

        with Signoff("http://localhost:3000", api_key) as sg:
            decision = sg.ask("Deploy build 42?", key="deploy-42", assignee="role:approvers")
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retries: int = 4,
        backoff_s: float = 0.25,
        timeout: float = 30.0,
        round_s: int = MAX_ROUND_S,
    ) -> None:
        self._loop = _Loop()

        async def make() -> AsyncSignoff:  # the httpx client binds to the loop it is made on
            return AsyncSignoff(
                base_url, api_key, retries=retries, backoff_s=backoff_s, timeout=timeout, round_s=round_s
            )

        try:
            self._client = self._loop.run(make())
        except BaseException:
            self._loop.stop()
            raise
        self.checkpoints = SyncCheckpoints(self._client, self._loop)
        self.runs = SyncRuns(self._client, self._loop)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the client's loop."""
        if self._loop.loop.is_closed():
            return
        self._loop.run(self._client.close())
        self._loop.stop()

    @overload
    def ask(
        self,
        prompt: str,
        *,
        key: str,
        assignee: Assignee,
        response_model: None = None,
        wait_timeout: float | None = None,
        **fields: Any,
    ) -> Decision[Any]: ...
    @overload
    def ask(
        self,
        prompt: str,
        *,
        key: str,
        assignee: Assignee,
        response_model: type[T],
        wait_timeout: float | None = None,
        **fields: Any,
    ) -> Decision[T]: ...
    def ask(
        self,
        prompt: str,
        *,
        key: str,
        assignee: Assignee,
        response_model: type[T] | None = None,
        wait_timeout: float | None = None,
        **fields: Any,
    ) -> Decision[T] | Decision[Any]:
        """Ask a person and wait for the decision (see ``AsyncSignoff.ask``)."""
        if response_model is None:
            return self._loop.run(
                self._client.ask(prompt, key=key, assignee=assignee, wait_timeout=wait_timeout, **fields)
            )
        return self._loop.run(
            self._client.ask(
                prompt,
                key=key,
                assignee=assignee,
                response_model=response_model,
                wait_timeout=wait_timeout,
                **fields,
            )
        )
