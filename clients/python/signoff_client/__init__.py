"""Ask a person from your agent: the Python client of Signoff's HTTP API.

``AsyncSignoff`` / ``Signoff`` (``ask`` = create + wait, ``checkpoints``, ``runs``), typed
``Decision[T]``, RFC 9457 problems as typed exceptions, and ``verify_webhook``. Adapters:
``signoff_client.langgraph`` (extra ``langgraph``) and ``signoff_client.mcp`` (extra ``mcp``).
"""

from signoff_client._async import MAX_ROUND_S, AsyncSignoff, Checkpoints, Runs
from signoff_client._errors import (
    ApiError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    IdempotencyConflict,
    NotFound,
    PayloadTooLarge,
    ServerError,
    SignoffError,
    TransportError,
    Unauthenticated,
    WaitTimeout,
    WebhookVerificationError,
)
from signoff_client._models import (
    Actor,
    Checkpoint,
    CheckpointPage,
    Decision,
    Outcome,
    Pending,
    Run,
    RunPage,
    RunResult,
)
from signoff_client._sync import Signoff
from signoff_client.webhooks import sign_webhook, verify_webhook

__all__ = [
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
