"""``/api/v1/webhook-endpoints`` and the delivery log: subscriptions of the caller's API key."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.api._auth import Caller, new_secret
from bot.api._deps import ApiDeps, caller_of, deps_of
from bot.api._http import body_of, path_id
from bot.api._models import (
    DeliveryList,
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointOut,
    NoBody,
)
from bot.api._problems import ApiError, json_response
from bot.api._sender import CALLBACK_TARGET, ENDPOINT_TARGET
from engine.clients import Scope, Secret, WebhookEndpoint, rotated
from engine.errors import NotFound
from engine.events import WEBHOOK_KIND, EventType
from engine.model import Delivery, DeliveryStatus
from engine.ports import AuditDraft

__all__ = [
    "ROTATION_OVERLAP",
    "callbacks",
    "create",
    "delete",
    "deliveries",
    "listing",
    "redeliver",
    "rotate",
]

ROTATION_OVERLAP = timedelta(hours=24)
_LOG_LIMIT = 100


def _out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        description=endpoint.description,
        created_at=endpoint.created_at,
    )


def _audit(deps: ApiDeps, caller: Caller, kind: str, endpoint_id: str) -> AuditDraft:
    return AuditDraft(
        at=deps.container.clock.now(),
        actor=caller.identity,
        channel="api",
        kind=kind,
        payload={"endpoint": endpoint_id, "key": caller.key.id},
    )


async def _own(deps: ApiDeps, caller: Caller, endpoint_id: str) -> WebhookEndpoint:
    """The caller's endpoint; another key's (or a deleted one) is not found."""
    try:
        endpoint = await deps.clients.get_endpoint(endpoint_id)
    except NotFound:
        endpoint = None
    if endpoint is None or endpoint.client_id != caller.key.id or endpoint.deleted_at is not None:
        raise ApiError(404, "not_found", f"webhook endpoint {endpoint_id} not found")
    return endpoint


async def _manager(request: web.Request) -> tuple[ApiDeps, Caller]:
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.webhooks_manage)
    return deps, caller


async def create(request: web.Request) -> web.Response:
    """Subscribe a URL; the signing secret is in this response only."""
    deps, caller = await _manager(request)
    body = await body_of(request, EndpointCreate)
    # an endpoint receives only what its key may read
    if any(e is not EventType.run_finished for e in body.events):
        caller.require(Scope.checkpoints_read)
    if EventType.run_finished in body.events:
        caller.require(Scope.runs_read)
    c = deps.container
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=c.ids.new("whe_"),
        client_id=caller.key.id,
        url=str(body.url),
        events=list(dict.fromkeys(e.value for e in body.events)),
        description=body.description,
        secrets=[Secret(value=secret)],
        created_at=c.clock.now(),
    )
    await deps.clients.add_endpoint(endpoint, [_audit(deps, caller, "webhook_endpoint.created", endpoint.id)])
    return json_response(EndpointCreated(**_out(endpoint).model_dump(), secret=secret), 201)


async def listing(request: web.Request) -> web.Response:
    """The caller's endpoints."""
    deps, caller = await _manager(request)
    found = await deps.clients.list_endpoints(client_id=caller.key.id)
    return json_response(EndpointList(items=[_out(e) for e in found]))


async def delete(request: web.Request) -> web.Response:
    """Stop sending to an endpoint."""
    deps, caller = await _manager(request)
    endpoint = await _own(deps, caller, path_id(request))
    audit = _audit(deps, caller, "webhook_endpoint.deleted", endpoint.id)
    await deps.clients.delete_endpoint(endpoint.id, deps.container.clock.now(), [audit])
    return web.Response(status=204)


async def rotate(request: web.Request) -> web.Response:
    """A new secret; the previous one keeps signing (alongside) for 24 hours."""
    deps, caller = await _manager(request)
    await body_of(request, NoBody)
    endpoint = await _own(deps, caller, path_id(request))
    now = deps.container.clock.now()
    secret = new_secret()
    audit = _audit(deps, caller, "webhook_endpoint.rotated", endpoint.id)
    secrets = rotated(endpoint.secrets, secret, now, ROTATION_OVERLAP)
    updated = await deps.clients.set_endpoint_secrets(endpoint.id, secrets, [audit])
    expires = now + ROTATION_OVERLAP
    out = EndpointCreated(**_out(updated).model_dump(), secret=secret, previous_secret_expires_at=expires)
    return json_response(out)


def _delivery_out(row: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_type=str(row.payload.get("type", "")),
        url=str(row.payload.get("url", "")),
        status=row.status.value,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.error,
        created_at=row.created_at,
    )


async def deliveries(request: web.Request) -> web.Response:
    """The newest messages to one of the caller's endpoints."""
    deps, caller = await _manager(request)
    endpoint = await _own(deps, caller, path_id(request))
    rows = await deps.clients.deliveries_to(f"{ENDPOINT_TARGET}{endpoint.id}", limit=_LOG_LIMIT)
    return json_response(DeliveryList(items=[_delivery_out(r) for r in rows]))


async def callbacks(request: web.Request) -> web.Response:
    """The newest messages to the ``callback_url``s the caller's key named."""
    deps, caller = await _manager(request)
    rows = await deps.clients.deliveries_to(f"{CALLBACK_TARGET}{caller.key.id}", limit=_LOG_LIMIT)
    return json_response(DeliveryList(items=[_delivery_out(r) for r in rows]))


async def redeliver(request: web.Request) -> web.Response:
    """Send one message again now (same ``webhook-id``: receivers deduplicate on it)."""
    deps, caller = await _manager(request)
    await body_of(request, NoBody)
    delivery_id = path_id(request)
    try:
        row: Delivery | None = await deps.clients.get_delivery(delivery_id)
    except NotFound:
        row = None
    if row is None or row.kind != WEBHOOK_KIND or row.payload.get("client") != caller.key.id:
        raise ApiError(404, "not_found", f"webhook delivery {delivery_id} not found")
    now = deps.container.clock.now()
    audit = AuditDraft(
        at=now,
        actor=caller.identity,
        channel="api",
        kind="webhook.redelivered",
        run_id=row.run_id,
        checkpoint_id=row.checkpoint_id,
        payload={"delivery": row.id, "previous_status": row.status.value},
    )
    await deps.container.store.mark_delivery(
        row.id, status=DeliveryStatus.pending, attempts=0, next_attempt_at=now, audit=[audit]
    )
    return json_response(_delivery_out(await deps.clients.get_delivery(row.id)), 202)
