"""Reading requests: bodies (JSON objects, 1 MiB at most), query strings and path ids."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot.api._problems import ApiError, from_validation

__all__ = ["MAX_BODY", "body_of", "path_id", "query_of"]

MAX_BODY = 1024 * 1024
_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_MAX_DEPTH = 64
M = TypeVar("M", bound=BaseModel)


def _too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"the body is over {MAX_BODY} bytes")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_text(value: Any, depth: int = 0) -> None:
    """Refuse what no database column takes: NUL characters, unpaired surrogates, deep nesting."""
    if depth > _MAX_DEPTH:
        raise ApiError(400, "invalid_json", f"the body nests deeper than {_MAX_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, "invalid_json", "strings may not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(
                400, "invalid_json", "strings must be valid Unicode (an unpaired surrogate)"
            ) from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, depth + 1)
            _check_text(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_text(v, depth + 1)


async def body_of(request: web.Request, model: type[M], *, prefix: str = "") -> M:
    """The request's JSON object as ``model`` (an empty body is ``{}``).

    Raises:
        ApiError: 413 over ``MAX_BODY``; 415 not JSON; 400 malformed, not an object, or invalid
            fields (unknown ones included).
    """
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _too_large()
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large() from None
    if len(raw) > MAX_BODY:
        raise _too_large()
    data: Any = {}
    if raw.strip():
        ctype = request.content_type
        if ctype != "application/json" and not ctype.endswith("+json"):
            raise ApiError(415, "unsupported_media_type", "send the body as application/json")
        try:
            data = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    _check_text(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, prefix) from None


def query_of(request: web.Request, model: type[M]) -> M:
    """The query string as ``model`` (unknown parameters are refused)."""
    params = dict(request.query)
    _check_text(params)
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise from_validation(exc) from None


def path_id(request: web.Request, name: str = "id") -> str:
    """An id from the path; one that cannot exist is a 404 without a database read."""
    value = request.match_info[name]
    if not _ID.match(value):
        raise ApiError(404, "not_found", f"no such {name.removesuffix('_id') or 'resource'}: {value[:40]!r}")
    return value
