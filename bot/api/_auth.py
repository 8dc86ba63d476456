"""API keys: how they are made, shown once, stored as a hash, and checked on every request.

A key reads ``so_<key id>.<secret>``; the store keeps ``sha256(secret)`` only, and a presented
key is compared with ``hmac.compare_digest`` (an unknown id costs the same comparison).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from bot.api._problems import ApiError
from engine.agents import agent_id
from engine.clients import ApiKey, ClientStore, Scope, Secret
from engine.errors import NotFound
from engine.ports import AuditDraft, IdFactory

__all__ = ["Caller", "NewKey", "authenticate", "new_key", "new_secret", "parse_scopes"]

_PREFIX = "so_"
_DUMMY = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class Caller:
    """The key a request was made with."""

    key: ApiKey

    @property
    def identity(self) -> str:
        """Who acts: the person the key is bound to, else the agent ``api:<key id>``."""
        return self.key.as_user or agent_id(self.key.id)

    @property
    def person(self) -> str | None:
        """The person the key is bound to (None: an agent's key)."""
        return self.key.as_user

    def require(self, scope: Scope) -> None:
        """Raises a 403 problem unless the key has ``scope``."""
        if scope.value not in self.key.scopes:
            raise ApiError(
                403, "insufficient_scope", f"this API key lacks the scope {scope.value}", rule=scope.value
            )


@dataclass(frozen=True)
class NewKey:
    """A key as created: the stored record, the key and its signing secret (shown once)."""

    record: ApiKey
    token: str
    signing_secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def parse_scopes(raw: str) -> list[str]:
    """``a,b`` -> the scopes, checked. Raises ValueError naming an unknown one."""
    scopes = [s.strip() for s in raw.split(",") if s.strip()]
    known = {s.value for s in Scope}
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; use {', '.join(sorted(known))}")
    if not scopes:
        raise ValueError("give at least one scope")
    return list(dict.fromkeys(scopes))


async def new_key(
    store: ClientStore,
    ids: IdFactory,
    at: datetime,
    *,
    name: str,
    scopes: list[str],
    as_user: str | None,
    created_by: str,
) -> NewKey:
    """Create and store a key (audited). A decide scope needs a person to bind the key to.

    Raises:
        ValueError: ``checkpoints:decide`` without ``as_user``, or an empty name.
    """
    if not name.strip():
        raise ValueError("a key needs a name")
    if Scope.checkpoints_decide.value in scopes and not as_user:
        raise ValueError("checkpoints:decide needs --as-user: an agent's key can never decide")
    secret = secrets.token_urlsafe(32)
    signing = new_secret()
    record = ApiKey(
        id=ids.new("key_"),
        name=name.strip(),
        secret_hash=_hash(secret),
        scopes=scopes,
        as_user=as_user or None,
        signing_secrets=[Secret(value=signing)],
        created_by=created_by,
        created_at=at,
    )
    audit = AuditDraft(
        at=at,
        actor=created_by,
        channel="cli",
        kind="api_key.created",
        payload={"key": record.id, "name": record.name, "scopes": scopes, "as_user": record.as_user},
    )
    await store.add_api_key(record, [audit])
    return NewKey(record=record, token=f"{_PREFIX}{record.id}.{secret}", signing_secret=signing)


async def authenticate(request: web.Request, store: ClientStore) -> Caller:
    """The caller of a request with ``Authorization: Bearer so_...``.

    Raises:
        ApiError: 401 ``unauthenticated`` for a missing, malformed, unknown or revoked key.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("send Authorization: Bearer <API key>")
    key_id, _, secret = token.strip().removeprefix(_PREFIX).partition(".")
    found: ApiKey | None = None
    if token.strip().startswith(_PREFIX) and key_id and secret:
        try:
            found = await store.get_api_key(key_id)
        except NotFound:
            found = None
    expected = found.secret_hash if found is not None else _DUMMY
    matches = hmac.compare_digest(expected, _hash(secret))
    if found is None or not matches:
        raise _unauthenticated("this API key is not valid")
    if found.revoked_at is not None:
        raise _unauthenticated("this API key was revoked")
    return Caller(found)


def _unauthenticated(detail: str) -> ApiError:
    return ApiError(401, "unauthenticated", detail, headers={"WWW-Authenticate": 'Bearer realm="signoff"'})
