"""``sg.checkpoints``: ask, read, wait for, withdraw and list checkpoints; decide with a person's key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel

from signoff_client._models import Checkpoint, CheckpointPage, Decision, decision_of
from signoff_client._transport import Transport
from signoff_client._waiting import REPLAYED, Waiting, plain

__all__ = ["Assignee", "Checkpoints"]

T = TypeVar("T", bound=BaseModel)
Assignee = str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]]


def _schema(model: type[BaseModel] | None, schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if model is not None and schema is not None:
        raise ValueError("pass response_model or response_schema, not both")
    if model is not None:
        return model.model_json_schema()
    return dict(schema) if schema is not None else None


def _assignee(value: Assignee) -> str | dict[str, Any] | list[str | dict[str, Any]]:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    return [v if isinstance(v, str) else dict(v) for v in value]


class Checkpoints:
    """``sg.checkpoints``: create, get, wait, cancel, list (and decide, with a person's key)."""

    def __init__(self, transport: Transport, waiting: Waiting) -> None:
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
            "show": plain(show),
            "proposed": plain(proposed),
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
        replayed = answer.headers.get(REPLAYED) == "true"
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
            "data": plain(data) or {},
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
