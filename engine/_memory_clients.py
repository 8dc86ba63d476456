"""The ``ClientStore`` port in plain Python, mixed into ``InMemoryRunStore`` (private).

Listings page by insertion position, as the SQL store pages by its row number.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engine.clients import ApiKey, Idempotency, Page, Secret, WebhookEndpoint
from engine.errors import Conflict, NotFound
from engine.model import Checkpoint, CheckpointStatus, Delivery, Run, RunStatus
from engine.ports import AuditDraft

__all__ = ["InMemoryClients"]


class InMemoryClients:
    """API keys, idempotency records and webhook endpoints in dictionaries."""

    _runs: dict[str, Run]
    _checkpoints: dict[str, Checkpoint]
    _deliveries: dict[str, Delivery]
    _client_state: dict[str, Any]

    def _append(self, drafts: list[AuditDraft]) -> None:
        raise NotImplementedError

    def _clients(self) -> dict[str, Any]:
        state: dict[str, Any] | None = getattr(self, "_client_state", None)
        if state is None:
            state = {"keys": {}, "idempotency": {}, "endpoints": {}}
            self._client_state = state
        return state

    async def add_api_key(self, key: ApiKey, audit: list[AuditDraft]) -> None:
        """Store a new key. Raises Conflict when the id exists."""
        keys = self._clients()["keys"]
        if key.id in keys:
            raise Conflict(f"API key {key.id} already exists")
        keys[key.id] = key
        self._append(audit)

    async def get_api_key(self, key_id: str) -> ApiKey:
        """Raises NotFound."""
        found: ApiKey | None = self._clients()["keys"].get(key_id)
        if found is None:
            raise NotFound(f"API key {key_id} not found")
        return found

    async def list_api_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        return list(self._clients()["keys"].values())

    async def revoke_api_key(self, key_id: str, at: datetime, audit: list[AuditDraft]) -> ApiKey:
        """Revoke a key (a second revoke keeps the first time). Raises NotFound."""
        key = await self.get_api_key(key_id)
        if key.revoked_at is None:
            key = key.model_copy(update={"revoked_at": at})
            self._clients()["keys"][key_id] = key
        self._append(audit)
        return key

    async def set_key_secrets(self, key_id: str, secrets: list[Secret], audit: list[AuditDraft]) -> ApiKey:
        """Replace a key's signing secrets. Raises NotFound."""
        key = (await self.get_api_key(key_id)).model_copy(update={"signing_secrets": list(secrets)})
        self._clients()["keys"][key_id] = key
        self._append(audit)
        return key

    async def claim_idempotency(self, record: Idempotency) -> Idempotency:
        """The stored record of the client's key: ``record`` when new, else the first one."""
        table = self._clients()["idempotency"]
        found: Idempotency = table.setdefault((record.client_id, record.key), record)
        return found

    async def add_endpoint(self, endpoint: WebhookEndpoint, audit: list[AuditDraft]) -> None:
        """Store a webhook endpoint. Raises Conflict when the id exists."""
        endpoints = self._clients()["endpoints"]
        if endpoint.id in endpoints:
            raise Conflict(f"webhook endpoint {endpoint.id} already exists")
        endpoints[endpoint.id] = endpoint
        self._append(audit)

    async def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """An endpoint, deleted ones too. Raises NotFound."""
        found: WebhookEndpoint | None = self._clients()["endpoints"].get(endpoint_id)
        if found is None:
            raise NotFound(f"webhook endpoint {endpoint_id} not found")
        return found

    async def list_endpoints(self, *, client_id: str | None = None) -> list[WebhookEndpoint]:
        """Endpoints not deleted, oldest first."""
        return [
            e
            for e in self._clients()["endpoints"].values()
            if e.deleted_at is None and (client_id is None or e.client_id == client_id)
        ]

    async def set_endpoint_secrets(
        self, endpoint_id: str, secrets: list[Secret], audit: list[AuditDraft]
    ) -> WebhookEndpoint:
        """Replace an endpoint's secrets. Raises NotFound."""
        endpoint = (await self.get_endpoint(endpoint_id)).model_copy(update={"secrets": list(secrets)})
        self._clients()["endpoints"][endpoint_id] = endpoint
        self._append(audit)
        return endpoint

    async def delete_endpoint(
        self, endpoint_id: str, at: datetime, audit: list[AuditDraft]
    ) -> WebhookEndpoint:
        """Mark an endpoint deleted. Raises NotFound."""
        endpoint = await self.get_endpoint(endpoint_id)
        if endpoint.deleted_at is None:
            endpoint = endpoint.model_copy(update={"deleted_at": at})
            self._clients()["endpoints"][endpoint_id] = endpoint
        self._append(audit)
        return endpoint

    async def page_runs(
        self, *, status: list[RunStatus] | None, workflow_id: str | None, after: int | None, limit: int
    ) -> Page:
        """Runs newest first, continuing after ``after``."""
        rows = [
            (pos, r)
            for pos, r in enumerate(self._runs.values(), start=1)
            if (status is None or r.status in status)
            and (workflow_id is None or r.workflow_id == workflow_id)
        ]
        picked, more = _page(rows, after, limit)
        return Page(runs=[r for _, r in picked], after=more)

    async def page_checkpoints(
        self, *, open_only: bool | None, assignee: str | None, after: int | None, limit: int
    ) -> Page:
        """Checkpoints newest first, continuing after ``after``."""
        rows = [
            (pos, c)
            for pos, c in enumerate(self._checkpoints.values(), start=1)
            if (open_only is None or (c.status is CheckpointStatus.open) == open_only)
            and (assignee is None or assignee in c.assignees)
        ]
        picked, more = _page(rows, after, limit)
        return Page(checkpoints=[c for _, c in picked], after=more)

    async def deliveries_to(self, target: str, *, limit: int) -> list[Delivery]:
        """The newest outbox rows addressed to ``target``, newest first."""
        rows = [d for d in self._deliveries.values() if d.target == target]
        return [json_copy(d) for d in reversed(rows)][:limit]

    async def get_delivery(self, delivery_id: str) -> Delivery:
        """One outbox row. Raises NotFound."""
        found = self._deliveries.get(delivery_id)
        if found is None:
            raise NotFound(f"delivery {delivery_id} not found")
        return json_copy(found)


def _page(
    rows: list[tuple[int, Any]], after: int | None, limit: int
) -> tuple[list[tuple[int, Any]], int | None]:
    newest = [row for row in reversed(rows) if after is None or row[0] < after]
    picked = newest[:limit]
    more = picked[-1][0] if len(newest) > limit else None
    return picked, more


def json_copy(delivery: Delivery) -> Delivery:
    """A copy that shares nothing with the stored row."""
    return Delivery.model_validate(json.loads(delivery.model_dump_json()))
