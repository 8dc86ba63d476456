"""``verify_webhook`` agrees with the Standard Webhooks reference library, and refuses forgeries."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from signoff_client import WebhookVerificationError, sign_webhook, verify_webhook

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
BODY = b'{"type": "checkpoint.decided", "data": {"decision": {"outcome": "approved"}}}'


def _reference_headers(secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    when = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    signature = Webhook(secret).sign("msg_1", when, body.decode())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


def test_accepts_what_the_reference_library_signs() -> None:
    headers = _reference_headers(SECRET, BODY)
    assert verify_webhook(SECRET, headers, BODY)["type"] == "checkpoint.decided"
    upper = {k.title(): v for k, v in headers.items()}
    assert verify_webhook(SECRET, upper, BODY.decode())["data"]["decision"]["outcome"] == "approved"


def test_the_reference_library_accepts_what_we_sign() -> None:
    stamp = int(time.time())
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(stamp)}
    headers["webhook-signature"] = sign_webhook(SECRET, "msg_2", stamp, BODY)
    assert Webhook(SECRET).verify(BODY, headers)["type"] == "checkpoint.decided"


def test_any_of_several_signatures_during_a_rotation() -> None:
    headers = _reference_headers(OTHER, BODY)
    ours = _reference_headers(SECRET, BODY)["webhook-signature"]
    headers["webhook-signature"] = f"v1a,bogus {headers['webhook-signature']} {ours}"
    assert verify_webhook(SECRET, headers, BODY)
    assert verify_webhook(OTHER, headers, BODY)


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("secret", "body", "at", "override", "why"),
    [
        (SECRET, BODY.replace(b"approved", b"rejected"), NOW, {}, "a changed body"),
        (OTHER, BODY, NOW, {}, "another secret"),
        (SECRET, BODY, NOW, {"webhook-id": "msg_9"}, "another id"),
        (SECRET, BODY, NOW - 301, {}, "a timestamp over 5 minutes old"),
        (SECRET, BODY, NOW + 301, {}, "a timestamp over 5 minutes ahead"),
        (SECRET, BODY, NOW, {"webhook-signature": "v2," + "A" * 44}, "an unknown signature version"),
        (SECRET, BODY, NOW, {"webhook-signature": ""}, "no signature"),
        (SECRET, BODY, NOW, {"webhook-timestamp": "soon"}, "a timestamp that is not a number"),
    ],
)
def test_refuses(secret: str, body: bytes, at: float, override: dict[str, str], why: str) -> None:
    headers = {**_reference_headers(SECRET, BODY, at=at), **override}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, body, now=NOW)


def test_accepts_the_edges_of_the_tolerance() -> None:
    for at in (NOW - 300, NOW + 300):
        assert verify_webhook(SECRET, _reference_headers(SECRET, BODY, at=at), BODY, now=NOW)


def test_a_secret_that_is_not_base64_is_an_error_not_a_crash() -> None:
    headers = _reference_headers(SECRET, BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whsec_%%%", headers, BODY)
