"""Events for webhooks: queued as outbox rows in the transaction of the state change they report.

The engine queues one ``webhook_event`` row per event (a checkpoint opened, decided, timed out
or cancelled; a run finished) wherever it commits that change, so every path that opens or
resolves a checkpoint (Slack, console, CLI, timers, the HTTP API) fires it. After commit the
outbox hands the row to the webhook sender, which fans it out to one signed ``webhook`` row per
receiver (subscribed endpoints and the run's ``callback_url``).

Signatures follow the Standard Webhooks specification: ``webhook-id``, ``webhook-timestamp``
and ``webhook-signature: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>``; during a secret
rotation every valid secret signs, space-separated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from enum import StrEnum

from engine.model import Delivery
from engine.ports import IdFactory

__all__ = [
    "EVENT_KIND",
    "WEBHOOK_KIND",
    "EventType",
    "event_delivery",
    "secret_key",
    "sign",
]

EVENT_KIND = "webhook_event"
"""Outbox kind of an event, before it is fanned out to its receivers."""
WEBHOOK_KIND = "webhook"
"""Outbox kind of one signed POST to one receiver (its id is the ``webhook-id``)."""
_PREFIX = "whsec_"


class EventType(StrEnum):
    """What happened."""

    checkpoint_opened = "checkpoint.opened"
    checkpoint_decided = "checkpoint.decided"
    checkpoint_timed_out = "checkpoint.timed_out"
    checkpoint_cancelled = "checkpoint.cancelled"
    run_finished = "run.finished"


def event_delivery(
    ids: IdFactory, at: datetime, event: EventType, run_id: str, checkpoint_id: str | None = None
) -> Delivery:
    """The outbox row of one event; the body is built from the stored rows when it is sent."""
    return Delivery(
        id=ids.new("evt_"),
        run_id=run_id,
        checkpoint_id=checkpoint_id,
        kind=EVENT_KIND,
        target=f"event:{event.value}",
        payload={"type": event.value},
        next_attempt_at=at,
        created_at=at,
    )


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (its base64 part, decoded).

    Raises:
        ValueError: not a ``whsec_`` secret.
    """
    if not secret.startswith(_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret.removeprefix(_PREFIX))


def sign(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64>`` per secret, space-separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    parts = [
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    ]
    return " ".join(parts)
