"""Verify a webhook from Signoff (the Standard Webhooks scheme) before trusting its body.

``webhook-signature`` holds one or more ``v1,<base64>`` values separated by spaces (two during
a secret rotation); each is ``base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`` where
``key`` is the base64-decoded part of ``whsec_...``. A timestamp more than ``tolerance_s`` away
from now is refused, so a captured webhook cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from signoff_client._errors import WebhookVerificationError

__all__ = ["TOLERANCE_S", "sign_webhook", "verify_webhook"]

TOLERANCE_S = 300
_PREFIX = "whsec_"


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("the secret is not a whsec_ base64 secret") from exc


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of a message (what the server sends)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_s: int = TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook's signature and timestamp; return its parsed body.

    Args:
        secret: The endpoint's or key's ``whsec_...`` signing secret.
        headers: The request's headers (any capitalisation).
        body: The raw body, exactly as received (not re-serialised JSON).
        tolerance_s: How far ``webhook-timestamp`` may be from now, either way.

    Raises:
        WebhookVerificationError: A header is missing, the timestamp is out of tolerance, or no
            ``v1`` signature matches (compared in constant time).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    webhook_id, stamp, signatures = (
        lower.get("webhook-id"),
        lower.get("webhook-timestamp"),
        lower.get("webhook-signature"),
    )
    if not webhook_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not a number") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is too old or too new")
    raw = body.encode() if isinstance(body, str) else body
    expected = sign_webhook(secret, webhook_id, timestamp, raw).encode()
    for candidate in signatures.split():
        version, _, _ = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            parsed: dict[str, Any] = json.loads(raw)
            return parsed
    raise WebhookVerificationError("no matching signature")
