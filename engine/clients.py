"""Clients of the HTTP API: API keys, idempotency records and webhook endpoints, and their store.

A key's secret is stored only as a SHA-256 hash. Webhook secrets must sign, so they are stored
as they are; a rotation keeps the old secret valid for a while (``Secret.expires_at``), and every
valid secret signs a webhook meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from engine.model import Checkpoint, Delivery, Run, RunStatus
from engine.ports import AuditDraft

__all__ = [
    "ApiKey",
    "ChangeFeed",
    "ClientStore",
    "Idempotency",
    "Page",
    "Scope",
    "Secret",
    "WebhookEndpoint",
    "rotated",
    "valid_secrets",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scope(StrEnum):
    """What an API key may do."""

    checkpoints_create = "checkpoints:create"
    checkpoints_read = "checkpoints:read"
    checkpoints_decide = "checkpoints:decide"
    runs_write = "runs:write"
    runs_read = "runs:read"
    webhooks_manage = "webhooks:manage"


class Secret(_Frozen):
    """A webhook signing secret (``whsec_...``); valid until ``expires_at`` when set."""

    value: str
    expires_at: datetime | None = None


def valid_secrets(secrets: list[Secret], at: datetime) -> list[str]:
    """The secrets that sign at ``at`` (the newest first)."""
    return [s.value for s in secrets if s.expires_at is None or s.expires_at > at]


def rotated(secrets: list[Secret], new: str, at: datetime, overlap: timedelta) -> list[Secret]:
    """``new`` first; the current secret keeps signing until ``at + overlap``; expired ones go."""
    until = at + overlap
    kept = [s.model_copy(update={"expires_at": until}) for s in secrets if s.expires_at is None]
    kept += [s for s in secrets if s.expires_at is not None and s.expires_at > at]
    return [Secret(value=new), *kept]


class ApiKey(_Frozen):
    """An API key: its hash, scopes, the person it is bound to (None: an agent), and the secret
    that signs the webhooks sent to the ``callback_url`` of what it creates."""

    id: str
    name: str
    secret_hash: str
    scopes: list[str]
    as_user: str | None = None
    signing_secrets: list[Secret] = Field(default_factory=list)
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None


class Idempotency(_Frozen):
    """One idempotency key of one client: the request it was first used with, and what it made."""

    client_id: str
    key: str
    request_hash: str
    resource: Literal["checkpoint", "run"]
    resource_id: str
    created_at: datetime


class WebhookEndpoint(_Frozen):
    """A subscription: events of these types are POSTed, signed, to ``url``."""

    id: str
    client_id: str
    url: str
    events: list[str]
    description: str = ""
    secrets: list[Secret] = Field(default_factory=list)
    created_at: datetime
    deleted_at: datetime | None = None


class Page(_Frozen):
    """One page of a newest-first listing; ``after`` continues it (None: the last page)."""

    runs: list[Run] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    after: int | None = None


class ClientStore(Protocol):
    """Durable state of API clients. Every method is one transaction; state changes carry their
    audit drafts, chained in the same transaction."""

    async def add_api_key(self, key: ApiKey, audit: list[AuditDraft]) -> None:
        """Store a new key. Raises Conflict when the id exists."""
        ...

    async def get_api_key(self, key_id: str) -> ApiKey:
        """Raises NotFound."""
        ...

    async def list_api_keys(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones too)."""
        ...

    async def revoke_api_key(self, key_id: str, at: datetime, audit: list[AuditDraft]) -> ApiKey:
        """Revoke a key (a second revoke keeps the first time). Raises NotFound."""
        ...

    async def set_key_secrets(self, key_id: str, secrets: list[Secret], audit: list[AuditDraft]) -> ApiKey:
        """Replace a key's signing secrets (a rotation). Raises NotFound."""
        ...

    async def claim_idempotency(self, record: Idempotency) -> Idempotency:
        """Record ``record`` unless the client already used its key; returns the stored record
        (``record`` itself when it was new, else the first one: compare ``request_hash``)."""
        ...

    async def add_endpoint(self, endpoint: WebhookEndpoint, audit: list[AuditDraft]) -> None:
        """Store a webhook endpoint. Raises Conflict when the id exists."""
        ...

    async def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """An endpoint, deleted ones too (with ``deleted_at``). Raises NotFound."""
        ...

    async def list_endpoints(self, *, client_id: str | None = None) -> list[WebhookEndpoint]:
        """Endpoints that are not deleted, oldest first; only one client's when given."""
        ...

    async def set_endpoint_secrets(
        self, endpoint_id: str, secrets: list[Secret], audit: list[AuditDraft]
    ) -> WebhookEndpoint:
        """Replace an endpoint's secrets (a rotation). Raises NotFound."""
        ...

    async def delete_endpoint(
        self, endpoint_id: str, at: datetime, audit: list[AuditDraft]
    ) -> WebhookEndpoint:
        """Mark an endpoint deleted (nothing more is sent to it). Raises NotFound."""
        ...

    async def page_runs(
        self, *, status: list[RunStatus] | None, workflow_id: str | None, after: int | None, limit: int
    ) -> Page:
        """Runs newest first, ``limit`` at most, continuing after a page's ``after``."""
        ...

    async def page_checkpoints(
        self, *, open_only: bool | None, assignee: str | None, after: int | None, limit: int
    ) -> Page:
        """Checkpoints newest first (only open ones, only resolved ones, or all with None),
        assigned to the principal ``assignee`` when given."""
        ...

    async def deliveries_to(self, target: str, *, limit: int) -> list[Delivery]:
        """The newest outbox rows addressed to ``target``, newest first."""
        ...

    async def get_delivery(self, delivery_id: str) -> Delivery:
        """One outbox row. Raises NotFound."""
        ...


class ChangeFeed(Protocol):
    """Wakes this process when another one opened or resolved a checkpoint or ended a run."""

    async def subscribe(self, wake: Callable[[str | None], None]) -> Callable[[], Awaitable[None]] | None:
        """Call ``wake(run_id)`` for every change committed anywhere (``wake(None)``: anything may
        have changed, after a lost connection). Returns a function that stops it, or None when
        this store cannot tell (then only in-process wake-ups and polling are left)."""
        ...
