"""The client's public API is its ``__all__``: pinned, and importable without the adapters' extras."""

from __future__ import annotations

import subprocess
import sys

import signoff_client
import signoff_client.langgraph
import signoff_client.mcp


def test_public_api() -> None:
    assert signoff_client.__all__ == [
        "MAX_ROUND_S",
        "Actor",
        "ApiError",
        "AsyncSignoff",
        "BadRequest",
        "Checkpoint",
        "CheckpointPage",
        "Checkpoints",
        "Conflict",
        "Decision",
        "FieldError",
        "Forbidden",
        "IdempotencyConflict",
        "NotFound",
        "Outcome",
        "PayloadTooLarge",
        "Pending",
        "Run",
        "RunPage",
        "RunResult",
        "Runs",
        "ServerError",
        "Signoff",
        "SignoffError",
        "TransportError",
        "Unauthenticated",
        "WaitTimeout",
        "WebhookVerificationError",
        "sign_webhook",
        "verify_webhook",
    ]
    assert signoff_client.langgraph.__all__ == [
        "SIGNOFF",
        "Driven",
        "checkpoint",
        "checkpoint_key",
        "checkpoint_sync",
        "drive",
        "signoff_interrupts",
    ]
    assert signoff_client.mcp.__all__ == ["DEFAULT_WAIT_S", "ClientFor", "build_server", "main"]


def test_the_client_needs_only_httpx_and_pydantic() -> None:
    code = (
        "import sys, signoff_client; "
        "loaded = {m.split('.')[0] for m in sys.modules}; "
        "extra = {'langgraph', 'mcp', 'aiohttp', 'bot', 'engine', 'storage'} & loaded; "
        "print(sorted(extra))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
