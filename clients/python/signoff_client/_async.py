"""``AsyncSignoff``: ask a person and wait for the typed decision, over Signoff's HTTP API."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, overload

import httpx
from pydantic import BaseModel

from signoff_client._errors import WaitTimeout
from signoff_client._models import (
    Checkpoint,
    CheckpointPage,
    Decision,
    Run,
    RunPage,
    RunResult,
    decision_of,
)
from signoff_client._transport import Backoff, Transport

__all__ = ["MAX_ROUND_S", "AsyncSignoff", "Checkpoints", "Runs"]

T = TypeVar("T", bound=BaseModel)
MAX_ROUND_S = 25
"""The longest one long-poll request is held (gateways cut longer ones)."""
_REPLAYED = "Idempotent-Replayed"
Assignee = str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]]


def _schema(model: type[BaseModel] | None, schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if model is not None and schema is not None:
        raise ValueError("pass response_model or response_schema, not both")
    if model is not None:
        return model.model_json_schema()
    return dict(schema) if schema is not None else None


def _plain(value: BaseModel | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return dict(value) if value is not None else None


def _assignee(value: Assignee) -> str | dict[str, Any] | list[str | dict[str, Any]]:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    return [v if isinstance(v, str) else dict(v) for v in value]


class _Waiting:
    """Long-poll rounds of at most 25 s until a total timeout (None: until it ends)."""

    def __init__(self, transport: Transport, round_s: int) -> None:
        self.transport = transport
        self.round_s = max(0, min(round_s, MAX_ROUND_S))

    async def until_done(self, path: str, resource_id: str, timeout_s: float | None) -> Any:
        started = time.monotonic()
        while True:
            wait = self.round_s
            if timeout_s is not None:
                left = timeout_s - (time.monotonic() - started)
                wait = max(0, min(wait, math.ceil(left)))
            answer = await self.transport.request(
                "GET", path, params={"wait": wait}, safe=True, timeout_s=wait + 30.0
            )
            if answer.status == 200:
                return answer.body
            if timeout_s is not None and time.monotonic() - started >= timeout_s:
                raise WaitTimeout(resource_id, timeout_s)


class Checkpoints:
    """``sg.checkpoints``: create, get, wait, cancel, list (and decide, with a person's key)."""

    def __init__(self, transport: Transport, waiting: _Waiting) -> None:
        self._t = transport
        self._waiting = waiting

    async def create(
        self,
        prompt: str,
        *,
        key: str,
        assignee: Assignee,
        title: str | None = None,
        show: BaseModel | Mapping[str, Any] | None = None,
        proposed: BaseModel | Mapping[str, Any] | None = None,
        response_model: type[BaseModel] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        kind: Literal["approval", "input", "review"] | None = None,
        options: list[str] | None = None,
        notify: list[str] | None = None,
        quorum: int | None = None,
        timeout: str | None = None,
        reminders: list[str] | None = None,
        escalation: Any = None,
        priority: Literal["low", "medium", "high", "urgent"] | None = None,
        confirm: str | None = None,
        allow_self_approval: bool | None = None,
        callback_url: str | None = None,
    ) -> Checkpoint:
        """Ask a person: open a checkpoint (the same card, gate, timers and audit as a workflow's).

        Args:
            prompt: The question, shown as is.
            key: The idempotency key, chosen by you (never derived from the content): the same
                key and request return the same checkpoint; the same key with another request
                raises ``IdempotencyConflict``.
            assignee: Who decides: ``user:U123``, ``group:S123``, ``role:name``, ``channel:C123``,
                a list, or a pool.
            response_model: A pydantic model; its JSON Schema becomes ``response_schema``.
            timeout: The checkpoint's deadline on the server (``30m``, ``4h``, ``2d``); at the
                deadline it resolves ``timed_out``.
            Other arguments are as in docs/api.md.
        """
        body: dict[str, Any] = {
            "prompt": prompt,
            "assignee": _assignee(assignee),
            "title": title,
            "show": _plain(show),
            "proposed": _plain(proposed),
            "response_schema": _schema(response_model, response_schema),
            "kind": kind,
            "options": options,
            "notify": notify,
            "quorum": quorum,
            "timeout": timeout,
            "reminders": reminders,
            "escalation": escalation,
            "priority": priority,
            "confirm": confirm,
            "allow_self_approval": allow_self_approval,
            "callback_url": callback_url,
        }
        sent = {k: v for k, v in body.items() if v is not None}
        answer = await self._t.request(
            "POST", "/checkpoints", json=sent, headers={"Idempotency-Key": key}, safe=True
        )
        replayed = answer.headers.get(_REPLAYED) == "true"
        return Checkpoint.model_validate({**answer.body, "replayed": replayed})

    async def get(self, checkpoint_id: str) -> Checkpoint:
        """One checkpoint, with its decision once resolved."""
        answer = await self._t.request("GET", f"/checkpoints/{checkpoint_id}", safe=True)
        return Checkpoint.model_validate(answer.body)

    @overload
    async def wait(self, checkpoint_id: str, *, timeout: float | None = None) -> Decision[Any]: ...
    @overload
    async def wait(
        self, checkpoint_id: str, *, response_model: type[T], timeout: float | None = None
    ) -> Decision[T]: ...
    async def wait(
        self,
        checkpoint_id: str,
        *,
        response_model: type[T] | None = None,
        timeout: float | None = None,
    ) -> Decision[T] | Decision[Any]:
        """The decision, waiting for it in long-poll rounds of at most 25 s.

        Args:
            timeout: Seconds to wait in all; None waits until the checkpoint resolves (its own
                deadline, if it has one, resolves it ``timed_out``).

        Raises:
            WaitTimeout: ``timeout`` passed first; the checkpoint is still open.
        """
        path = f"/checkpoints/{checkpoint_id}/decision"
        body = await self._waiting.until_done(path, checkpoint_id, timeout)
        return decision_of(body, response_model)

    async def decision(
        self, checkpoint_id: str, *, response_model: type[T] | None = None
    ) -> Decision[T] | None:
        """The decision now, or None while the checkpoint is open (no waiting)."""
        answer = await self._t.request("GET", f"/checkpoints/{checkpoint_id}/decision", safe=True)
        return decision_of(answer.body, response_model) if answer.status == 200 else None

    async def cancel(self, checkpoint_id: str, *, reason: str | None = None) -> Checkpoint:
        """Withdraw an ask (only the key that asked, or an admin's); its decision reads ``cancelled``."""
        body = {"reason": reason} if reason else {}
        answer = await self._t.request("POST", f"/checkpoints/{checkpoint_id}/cancel", json=body, safe=True)
        return Checkpoint.model_validate(answer.body)

    async def list(
        self,
        *,
        status: Literal["open", "resolved", "all"] = "open",
        assignee: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> CheckpointPage:
        """One page of checkpoints, newest first."""
        params = {"status": status, "assignee": assignee, "limit": limit, "cursor": cursor}
        answer = await self._t.request("GET", "/checkpoints", params=params, safe=True)
        return CheckpointPage.model_validate(answer.body)

    async def decide(
        self,
        checkpoint_id: str,
        action: str,
        *,
        data: BaseModel | Mapping[str, Any] | None = None,
        comment: str | None = None,
        confirm: str | None = None,
        version: int | None = None,
    ) -> Decision[Any] | None:
        """Decide as the person a ``--as-user`` key is bound to (an agent's key is refused, 403).

        Returns the decision, or None when a quorum vote was recorded and more are needed.
        Never retried once sent: a repeat would be a second decision attempt.
        """
        body: dict[str, Any] = {
            "action": action,
            "data": _plain(data) or {},
            "comment": comment,
            "confirm": confirm,
        }
        if version is not None:
            body["version"] = version
        sent = {k: v for k, v in body.items() if v is not None}
        answer = await self._t.request(
            "POST", f"/checkpoints/{checkpoint_id}/decisions", json=sent, safe=False
        )
        return decision_of(answer.body, None) if answer.status == 200 else None


class Runs:
    """``sg.runs``: start, get, wait, cancel, list workflow runs."""

    def __init__(self, transport: Transport, waiting: _Waiting) -> None:
        self._t = transport
        self._waiting = waiting

    async def start(
        self,
        workflow: str,
        inputs: Mapping[str, Any] | BaseModel | None = None,
        *,
        key: str,
        callback_url: str | None = None,
    ) -> Run:
        """Start a catalog workflow; idempotent by ``key`` (yours, never derived from the inputs)."""
        body: dict[str, Any] = {"workflow": workflow, "inputs": _plain(inputs) or {}}
        if callback_url is not None:
            body["callback_url"] = callback_url
        answer = await self._t.request(
            "POST", "/runs", json=body, headers={"Idempotency-Key": key}, safe=True
        )
        return Run.model_validate({**answer.body, "replayed": answer.headers.get(_REPLAYED) == "true"})

    async def get(self, run_id: str) -> Run:
        """One run."""
        return Run.model_validate((await self._t.request("GET", f"/runs/{run_id}", safe=True)).body)

    async def wait(self, run_id: str, *, timeout: float | None = None) -> RunResult:
        """The result once the run ends, waiting in long-poll rounds of at most 25 s.

        Raises:
            WaitTimeout: ``timeout`` passed first; the run goes on.
        """
        body = await self._waiting.until_done(f"/runs/{run_id}/result", run_id, timeout)
        return RunResult.model_validate(body)

    async def cancel(self, run_id: str, *, reason: str | None = None) -> Run:
        """Cancel a run (its requester or an admin)."""
        body = {"reason": reason} if reason else {}
        answer = await self._t.request("POST", f"/runs/{run_id}/cancel", json=body, safe=True)
        return Run.model_validate(answer.body)

    async def list(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first (``status`` is comma-separated)."""
        params = {"status": status, "workflow": workflow, "limit": limit, "cursor": cursor}
        return RunPage.model_validate((await self._t.request("GET", "/runs", params=params, safe=True)).body)


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
        waiting = _Waiting(self._transport, round_s)
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
