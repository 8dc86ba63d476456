"""Idempotency keys: required to create anything, scoped per API key, never derived from content.

The first use of a key records the request's canonical hash and the id of what it creates,
before anything is created. A request with a recorded key and the same hash gets the same
resource (``Idempotent-Replayed: true``); with another hash, a 409 ``idempotency_conflict``.
A process that died between recording the key and creating the run leaves a key whose run does
not exist yet: the replay (same request) creates it under the recorded id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from bot.api._auth import Caller
from bot.api._problems import ApiError
from engine.audit import sha256_of
from engine.clients import ClientStore, Idempotency

__all__ = ["HEADER", "REPLAYED", "Claim", "claim", "idempotency_key", "request_hash"]

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_MAX = 255


@dataclass(frozen=True)
class Claim:
    """The recorded use of a key: the id to create under, and whether this is a replay."""

    resource_id: str
    replay: bool


def request_hash(body: BaseModel) -> str:
    """The canonical hash of a request (defaults filled in, the key itself left out)."""
    return sha256_of(body.model_dump(mode="json", exclude={"key"}))


def idempotency_key(request: web.Request, in_body: str | None) -> str:
    """The request's key, from the header or the ``key`` field (they must agree).

    Raises:
        ApiError: 400 when there is none, it is too long, or header and field differ.
    """
    header = request.headers.get(HEADER)
    if header is not None and in_body is not None and header != in_body:
        raise ApiError(
            400,
            "idempotency_key_mismatch",
            f"the {HEADER} header and the key field differ; send one of them",
            errors={"key": "differs from the Idempotency-Key header"},
        )
    key = header if header is not None else in_body
    if key is None or not key.strip():
        raise ApiError(
            400,
            "idempotency_key_required",
            f"creating needs an idempotency key ({HEADER} header or key field), unique per request: "
            "the same key returns the same resource",
            errors={"key": "required"},
        )
    if len(key) > _MAX:
        raise ApiError(
            400, "validation_failed", "the idempotency key is too long", errors={"key": "255 at most"}
        )
    return key


async def claim(
    store: ClientStore,
    caller: Caller,
    key: str,
    digest: str,
    resource: Literal["checkpoint", "run"],
    new_id: str,
    at: datetime,
) -> Claim:
    """Record the key, or find its first use.

    Raises:
        ApiError: 409 ``idempotency_conflict`` when the key was used with another request.
    """
    record = Idempotency(
        client_id=caller.key.id,
        key=key,
        request_hash=digest,
        resource=resource,
        resource_id=new_id,
        created_at=at,
    )
    stored = await store.claim_idempotency(record)
    if stored.request_hash != digest or stored.resource != resource:
        raise ApiError(
            409,
            "idempotency_conflict",
            f"the idempotency key {key!r} was already used with a different request "
            f"(on {stored.created_at:%Y-%m-%d %H:%M} UTC); use a new key for a new request",
        )
    return Claim(resource_id=stored.resource_id, replay=stored.resource_id != new_id)
