"""Errors: RFC 9457 problems from the server as typed exceptions, and the client's own.

Outcomes are data, not exceptions: a rejected, timed-out or cancelled checkpoint is a
``Decision`` with that ``outcome``. Exceptions are for transport, authentication and
validation errors, and for a wait that ran out of time on the client's side.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "IdempotencyConflict",
    "NotFound",
    "PayloadTooLarge",
    "ServerError",
    "SignoffError",
    "TransportError",
    "Unauthenticated",
    "WaitTimeout",
    "WebhookVerificationError",
    "problem_error",
]


class SignoffError(Exception):
    """Base of every error this package raises."""


class TransportError(SignoffError):
    """The server could not be reached (after the retries)."""


class WaitTimeout(SignoffError):
    """The client's own time limit ran out before a decision (the checkpoint stays open).

    Attributes:
        resource_id: The checkpoint or run that is still open: wait for it again later.
    """

    def __init__(self, resource_id: str, waited_s: float) -> None:
        super().__init__(f"{resource_id}: no result within {waited_s:g} s (it is still open)")
        self.resource_id = resource_id
        self.waited_s = waited_s


class WebhookVerificationError(SignoffError):
    """A webhook whose signature, timestamp or headers do not verify: refuse it."""


class FieldError:
    """One invalid field of a request, as the server named it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message

    def __repr__(self) -> str:
        return f"FieldError({self.field!r}, {self.message!r})"


class ApiError(SignoffError):
    """An RFC 9457 problem answered by the server. Branch on ``code``, not on the wording.

    Attributes:
        status: The HTTP status.
        code: The stable error code (docs/api.md), e.g. ``idempotency_conflict``.
        detail: The human explanation.
        errors: Field errors, for ``validation_failed``.
        problem: The whole problem document (``rule``, ``winner``, ``version``...).
    """

    def __init__(self, status: int, code: str, detail: str, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problem = problem
        raw = problem.get("errors") or []
        self.errors = [FieldError(str(e.get("field")), str(e.get("message"))) for e in raw]

    @property
    def rule(self) -> str | None:
        """The decision gate's rule that refused (403), if any."""
        rule = self.problem.get("rule")
        return rule if isinstance(rule, str) else None


class BadRequest(ApiError):
    """400, 415 or 422: the request itself is wrong (``validation_failed``, ``invalid_json``...)."""


class Unauthenticated(ApiError):
    """401: no key, or an unknown or revoked one."""


class Forbidden(ApiError):
    """403: a missing scope, an agent's key that tried to decide, or the gate refused."""


class NotFound(ApiError):
    """404: no such checkpoint, run, endpoint or route."""


class Conflict(ApiError):
    """409: already resolved or ended (``winner``), a stale version, or not an ask."""


class IdempotencyConflict(Conflict):
    """409 ``idempotency_conflict``: the key was used before with a different request."""


class PayloadTooLarge(ApiError):
    """413: a body over 1 MiB."""


class ServerError(ApiError):
    """5xx, still failing after the retries."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: BadRequest,
    422: BadRequest,
}


def problem_error(status: int, body: Any) -> ApiError:
    """The typed exception for an error answer (a problem document, or anything else)."""
    problem: dict[str, Any] = body if isinstance(body, dict) else {}
    code = str(problem.get("code") or f"http_{status}")
    detail = str(problem.get("detail") or problem.get("title") or body or "")
    if code == "idempotency_conflict":
        return IdempotencyConflict(status, code, detail, problem)
    cls = ServerError if status >= 500 else _BY_STATUS.get(status, ApiError)
    return cls(status, code, detail, problem)
