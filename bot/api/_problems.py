"""RFC 9457 problems: every error of the API, with a stable ``code`` and field errors.

Engine errors map to one status and code each, so a caller branches on ``code``, never on the
wording of ``detail``.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bot.api._models import FieldError, Problem
from engine.errors import (
    Conflict,
    EngineError,
    InvalidInput,
    InvalidWorkflow,
    NeedsDetail,
    NotAllowed,
    NotFound,
    StaleVersion,
)

__all__ = ["PROBLEM_TYPE", "ApiError", "from_engine", "from_validation", "json_response", "problem_response"]

PROBLEM_TYPE = "application/problem+json"


class ApiError(Exception):
    """An error answered as a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def problem(self) -> Problem:
        """The problem document."""
        fields = None
        if self.errors is not None:
            fields = [FieldError(field=k or "body", message=v) for k, v in self.errors.items()]
        return Problem(
            type=f"urn:signoff:problem:{self.code}",
            title=HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.detail,
            code=self.code,
            errors=fields,
            **self.extra,
        )


def from_validation(exc: ValidationError, prefix: str = "") -> ApiError:
    """A 400 naming every invalid field (unknown fields included)."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"])
        name = f"{prefix}{name}" if name else prefix.rstrip(".")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "this field is required"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        errors.setdefault(name, message)
    return ApiError(400, "validation_failed", "the request has invalid fields", errors=errors)


def from_engine(exc: EngineError) -> ApiError:
    """The problem of an engine error."""
    if isinstance(exc, InvalidInput):
        return ApiError(400, "validation_failed", str(exc), errors=exc.errors or {"": str(exc)})
    if isinstance(exc, InvalidWorkflow):
        return ApiError(400, "validation_failed", str(exc), errors={"": str(exc)})
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, NotAllowed):
        code = "agent_cannot_decide" if exc.rule == "agent_cannot_decide" else "not_allowed"
        return ApiError(403, code, str(exc), rule=exc.rule)
    if isinstance(exc, StaleVersion):
        return ApiError(409, "stale_version", str(exc), version=exc.version)
    if isinstance(exc, Conflict):
        return ApiError(409, "conflict", str(exc), winner=exc.winner)
    if isinstance(exc, NeedsDetail):
        return ApiError(422, "needs_detail", str(exc), question=exc.question)
    return ApiError(400, "rejected", str(exc))


def problem_response(error: ApiError) -> web.Response:
    """The HTTP response of a problem."""
    body = error.problem().model_dump(mode="json", exclude_none=True)
    return web.Response(
        status=error.status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_TYPE,
        headers=error.headers,
    )


def json_response(model: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response of a response model."""
    return web.Response(
        status=status,
        text=model.model_dump_json(),
        content_type="application/json",
        headers=headers,
    )
