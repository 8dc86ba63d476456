"""``AsyncSignoff``: ask a person and wait for the typed decision, over Signoff's HTTP API."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar, overload

import httpx
from pydantic import BaseModel

from signoff_client._checkpoints import Assignee, Checkpoints
from signoff_client._models import Decision
from signoff_client._runs import Runs
from signoff_client._transport import Backoff, Transport
from signoff_client._waiting import MAX_ROUND_S, Waiting

__all__ = ["MAX_ROUND_S", "Assignee", "AsyncSignoff", "Checkpoints", "Runs"]

T = TypeVar("T", bound=BaseModel)


class AsyncSignoff:
    """The asynchronous client.

    Example::

        async with AsyncSignoff("http://localhost:3000", api_key) as sg:
            decision = await sg.ask("Deploy build 42?", key="deploy-42", assignee="role:approvers")

    Args:
        base_url: The server (``signoff serve``), without ``/api/v1``.
        api_key: A key from ``signoff keys create``.
        retries: Attempts after the first on 5xx, 429 and connection errors (never other 4xx).
        timeout: Seconds for one ordinary request (long polls get their wait on top).
        round_s: Seconds one long-poll request is held (at most 25).
        http: An ``httpx.AsyncClient`` to use (for proxies, TLS settings, tests).
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
        http: httpx.AsyncClient | None = None,
    ) -> None:
        backoff = Backoff(retries=retries, base_s=backoff_s)
        self._transport = Transport(base_url, api_key, backoff=backoff, timeout_s=timeout, http=http)
        waiting = Waiting(self._transport, round_s)
        self.checkpoints = Checkpoints(self._transport, waiting)
        self.runs = Runs(self._transport, waiting)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._transport.close()

    @overload
    async def ask(
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
    async def ask(
        self,
        prompt: str,
        *,
        key: str,
        assignee: Assignee,
        response_model: type[T],
        wait_timeout: float | None = None,
        **fields: Any,
    ) -> Decision[T]: ...
    async def ask(
        self,
        prompt: str,
        *,
        key: str,
        assignee: Assignee,
        response_model: type[T] | None = None,
        wait_timeout: float | None = None,
        **fields: Any,
    ) -> Decision[T] | Decision[Any]:
        """Ask a person and wait for the decision: ``checkpoints.create`` + ``checkpoints.wait``.

        ``fields`` are those of ``checkpoints.create`` (``show``, ``proposed``, ``timeout``...).
        With ``response_model``, the person's data is validated by the server against its JSON
        Schema and returned parsed (``decision.data``). A timeout on the server is the outcome
        ``timed_out``; ``wait_timeout`` (client side) raises ``WaitTimeout`` instead.
        """
        cp = await self.checkpoints.create(
            prompt, key=key, assignee=assignee, response_model=response_model, **fields
        )
        if response_model is None:
            return await self.checkpoints.wait(cp.id, timeout=wait_timeout)
        return await self.checkpoints.wait(cp.id, response_model=response_model, timeout=wait_timeout)
