"""API clients: keys, idempotency records, webhook endpoints, and the API's paged listings."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from engine.clients import ApiKey, Idempotency, Page, Secret, WebhookEndpoint
from engine.errors import Conflict, NotFound
from engine.model import CheckpointStatus, Delivery, RunStatus
from engine.ports import AuditDraft
from storage import _audit
from storage._db import Tx
from storage._sql import Sql, bind_when, dumps_json
from storage.mapping import API_KEYS, CHECKPOINTS, DELIVERIES, ENDPOINTS, IDEMPOTENCY, RUNS, insert

__all__ = [
    "add_endpoint",
    "add_key",
    "claim_idempotency",
    "delete_endpoint",
    "deliveries_to",
    "endpoint",
    "endpoints",
    "get_delivery",
    "key",
    "keys",
    "page_checkpoints",
    "page_runs",
    "revoke_key",
    "set_endpoint_secrets",
    "set_key_secrets",
]

_INSERT_KEY = insert(API_KEYS, "ON CONFLICT (id) DO NOTHING RETURNING pk")
_KEY = API_KEYS.select("WHERE id = :id")
_KEYS = API_KEYS.select("ORDER BY pk")
_REVOKE = Sql(
    f"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, :at) WHERE id = :id RETURNING {API_KEYS.columns}"
)
_KEY_SECRETS = Sql(
    f"UPDATE api_keys SET signing_secrets = :secrets WHERE id = :id RETURNING {API_KEYS.columns}"
)
_INSERT_IDEM = insert(IDEMPOTENCY, "ON CONFLICT (client_id, key) DO NOTHING")
_IDEM = IDEMPOTENCY.select("WHERE client_id = :client_id AND key = :key")
_INSERT_ENDPOINT = insert(ENDPOINTS, "ON CONFLICT (id) DO NOTHING RETURNING pk")
_ENDPOINT = ENDPOINTS.select("WHERE id = :id")
_ENDPOINT_SECRETS = Sql(
    f"UPDATE webhook_endpoints SET secrets = :secrets WHERE id = :id RETURNING {ENDPOINTS.columns}"
)
_DELETE_ENDPOINT = Sql(
    "UPDATE webhook_endpoints SET deleted_at = COALESCE(deleted_at, :at) WHERE id = :id"
    f" RETURNING {ENDPOINTS.columns}"
)
_TO_TARGET = DELIVERIES.select("WHERE target = :target ORDER BY pk DESC LIMIT :limit")
_DELIVERY = DELIVERIES.select("WHERE id = :id")


def add_key(tx: Tx, key: ApiKey, audit: list[AuditDraft]) -> None:
    """Insert a key. Raises Conflict when the id exists."""
    inserted = tx.query(_INSERT_KEY, API_KEYS.params(key, tx.pg))
    head = _audit.lock_head(tx, audit)
    if inserted.fetchone() is None:
        raise Conflict(f"API key {key.id} already exists")
    _audit.append(tx, audit, head)


def key(tx: Tx, key_id: str) -> ApiKey:
    """One key. Raises NotFound."""
    row = tx.query(_KEY, {"id": key_id}).fetchone()
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    return API_KEYS.load(row, tx.pg)


def keys(tx: Tx) -> list[ApiKey]:
    """Every key, oldest first."""
    return API_KEYS.load_all(tx.query(_KEYS).fetchall(), tx.pg)


def _changed(tx: Tx, sql: Sql, params: dict[str, Any], audit: list[AuditDraft], what: str) -> Any:
    found = tx.query(sql, params)
    head = _audit.lock_head(tx, audit)
    row = found.fetchone()
    if row is None:
        raise NotFound(f"{what} {params['id']} not found")
    _audit.append(tx, audit, head)
    return row


def revoke_key(tx: Tx, key_id: str, at: datetime, audit: list[AuditDraft]) -> ApiKey:
    """Revoke a key (a second revoke keeps the first time). Raises NotFound."""
    row = _changed(tx, _REVOKE, {"id": key_id, "at": bind_when(at, tx.pg)}, audit, "API key")
    return API_KEYS.load(row, tx.pg)


def set_key_secrets(tx: Tx, key_id: str, secrets: list[Secret], audit: list[AuditDraft]) -> ApiKey:
    """Replace a key's signing secrets. Raises NotFound."""
    row = _changed(tx, _KEY_SECRETS, {"id": key_id, "secrets": dumps_json(secrets)}, audit, "API key")
    return API_KEYS.load(row, tx.pg)


def claim_idempotency(tx: Tx, record: Idempotency) -> Idempotency:
    """Insert the record unless the client used its key; returns the stored one."""
    tx.run(_INSERT_IDEM, IDEMPOTENCY.params(record, tx.pg))
    row = tx.query(_IDEM, {"client_id": record.client_id, "key": record.key}).fetchone()
    return IDEMPOTENCY.load(row, tx.pg)


def add_endpoint(tx: Tx, endpoint: WebhookEndpoint, audit: list[AuditDraft]) -> None:
    """Insert an endpoint. Raises Conflict when the id exists."""
    inserted = tx.query(_INSERT_ENDPOINT, ENDPOINTS.params(endpoint, tx.pg))
    head = _audit.lock_head(tx, audit)
    if inserted.fetchone() is None:
        raise Conflict(f"webhook endpoint {endpoint.id} already exists")
    _audit.append(tx, audit, head)


def endpoint(tx: Tx, endpoint_id: str) -> WebhookEndpoint:
    """One endpoint, deleted or not. Raises NotFound."""
    row = tx.query(_ENDPOINT, {"id": endpoint_id}).fetchone()
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return ENDPOINTS.load(row, tx.pg)


@cache
def _endpoints_sql(by_client: bool) -> Sql:
    where = "deleted_at IS NULL" + (" AND client_id = :client_id" if by_client else "")
    return ENDPOINTS.select(f"WHERE {where} ORDER BY pk")


def endpoints(tx: Tx, *, client_id: str | None) -> list[WebhookEndpoint]:
    """Endpoints not deleted, oldest first."""
    rows = tx.query(_endpoints_sql(client_id is not None), {"client_id": client_id}).fetchall()
    return ENDPOINTS.load_all(rows, tx.pg)


def set_endpoint_secrets(
    tx: Tx, endpoint_id: str, secrets: list[Secret], audit: list[AuditDraft]
) -> WebhookEndpoint:
    """Replace an endpoint's secrets. Raises NotFound."""
    params = {"id": endpoint_id, "secrets": dumps_json(secrets)}
    return ENDPOINTS.load(_changed(tx, _ENDPOINT_SECRETS, params, audit, "webhook endpoint"), tx.pg)


def delete_endpoint(tx: Tx, endpoint_id: str, at: datetime, audit: list[AuditDraft]) -> WebhookEndpoint:
    """Mark an endpoint deleted. Raises NotFound."""
    params = {"id": endpoint_id, "at": bind_when(at, tx.pg)}
    return ENDPOINTS.load(_changed(tx, _DELETE_ENDPOINT, params, audit, "webhook endpoint"), tx.pg)


def _paged(rows: list[Any], limit: int) -> tuple[list[Any], int | None]:
    """Rows selected with their pk last and one extra row: the page and where the next starts."""
    page = rows[:limit]
    return [r[:-1] for r in page], (page[-1][-1] if len(rows) > limit else None)


def page_runs(
    tx: Tx, *, status: list[RunStatus] | None, workflow_id: str | None, after: int | None, limit: int
) -> Page:
    """Runs newest first (by row number), ``limit`` at most, after row ``after``."""
    where = ["1 = 1"]
    params: dict[str, Any] = {"limit": limit + 1, "after": after}
    if status is not None:
        names = [f"s{i}" for i in range(len(status))]
        params.update({n: s.value for n, s in zip(names, status, strict=True)})
        where.append(f"status IN ({', '.join(':' + n for n in names)})" if names else "1 = 0")
    if workflow_id is not None:
        where.append("workflow_id = :workflow_id")
        params["workflow_id"] = workflow_id
    if after is not None:
        where.append("pk < :after")
    sql = Sql(
        f"SELECT {RUNS.columns}, pk FROM runs WHERE {' AND '.join(where)} ORDER BY pk DESC LIMIT :limit"
    )
    rows, more = _paged(tx.query(sql, params).fetchall(), limit)
    return Page(runs=RUNS.load_all(rows, tx.pg), after=more)


def page_checkpoints(
    tx: Tx, *, open_only: bool | None, assignee: str | None, after: int | None, limit: int
) -> Page:
    """Checkpoints newest first, after row ``after``; ``assignee`` matches one principal exactly."""
    where = ["1 = 1"]
    params: dict[str, Any] = {"limit": limit + 1, "after": after}
    if open_only is not None:
        # with an assignee, ``status || ''`` keeps SQLite on the assignee index (as ``open_for``)
        where.append("status || '' = :status" if assignee and not tx.pg else "status = :status")
        params["status"] = (CheckpointStatus.open if open_only else CheckpointStatus.resolved).value
    if assignee is not None:
        # through the assignee index (one row per checkpoint and principal, kept as the
        # checkpoint's assignees change and after it resolves), not a scan of every checkpoint
        where.append("id IN (SELECT checkpoint_id FROM checkpoint_assignees WHERE principal = :assignee)")
        params["assignee"] = assignee
    if after is not None:
        where.append("pk < :after")
    sql = Sql(
        f"SELECT {CHECKPOINTS.columns}, pk FROM checkpoints WHERE {' AND '.join(where)}"
        " ORDER BY pk DESC LIMIT :limit"
    )
    rows, more = _paged(tx.query(sql, params).fetchall(), limit)
    return Page(checkpoints=CHECKPOINTS.load_all(rows, tx.pg), after=more)


def deliveries_to(tx: Tx, target: str, *, limit: int) -> list[Delivery]:
    """The newest outbox rows addressed to ``target``, newest first."""
    return DELIVERIES.load_all(tx.query(_TO_TARGET, {"target": target, "limit": limit}).fetchall(), tx.pg)


def get_delivery(tx: Tx, delivery_id: str) -> Delivery:
    """One outbox row. Raises NotFound."""
    row = tx.query(_DELIVERY, {"id": delivery_id}).fetchone()
    if row is None:
        raise NotFound(f"delivery {delivery_id} not found")
    return DELIVERIES.load(row, tx.pg)
