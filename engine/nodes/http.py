"""``http``: call an HTTP endpoint with retries and a stable idempotency key."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from engine.errors import SkillFailed
from engine.model import Deliverable, NodeSpec
from engine.nodes.base import Completed, LoadContext, NodeContext, NodeResult
from engine.ports import HttpRequest, HttpResponse
from engine.templates import render_value

__all__ = ["HttpNode"]


class RequestSpec(BaseModel):
    """The request; every string may be a template."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None


class HttpConfig(BaseModel):
    """``request`` plus which statuses count as success."""

    model_config = ConfigDict(extra="forbid")

    request: RequestSpec
    ok_status: list[int] = Field(default_factory=list)


class HttpNode:
    """Outbound HTTP through the HttpClient port."""

    type_name: ClassVar[str] = "http"
    config_model: ClassVar[type[BaseModel]] = HttpConfig
    template_fields: ClassVar[tuple[str, ...]] = ("request",)
    side_effects: ClassVar[bool] = True

    @classmethod
    def check(cls, node: NodeSpec, ctx: LoadContext) -> list[tuple[str | None, str]]:
        """The URL's scheme, host and port are literal; templates fill only the path and query."""
        config = node.config
        assert isinstance(config, HttpConfig)
        problem = url_problem(config.request.url)
        return [("request.url", problem)] if problem else []

    @classmethod
    async def execute(cls, ctx: NodeContext) -> NodeResult:
        """Send with retries on connection errors and 5xx; fail on other statuses."""
        if ctx.deps.http is None:
            raise SkillFailed("no HTTP client is configured for http nodes")
        spec = render_value(ctx.compiled["request"], ctx.scope)
        config = ctx.node.config
        assert isinstance(config, HttpConfig)
        _check_origin(config.request.url, str(spec["url"]))
        headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
        headers.setdefault("Idempotency-Key", ctx.idempotency_key)
        timeout = ctx.node.timeout.total_seconds() if ctx.node.timeout else 30.0
        request = HttpRequest(
            method=spec.get("method", "GET"),
            url=str(spec["url"]),
            headers=headers,
            json_body=spec.get("json"),
            body=spec.get("body"),
            timeout_s=timeout,
        )
        response = await _send(ctx, request)
        ok = response.status in config.ok_status if config.ok_status else 200 <= response.status < 300
        if not ok:
            raise SkillFailed(
                f"{request.method} {request.url} answered {response.status}: {response.text[:300]}",
                retryable=response.status >= 500 or response.status == 429,
            )
        return Completed(output=_deliverable(response), input={"method": request.method, "url": request.url})


_TAG = re.compile(r"\{[{%#]")
_ORIGIN = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>[/?#].*)?$", re.DOTALL
)
_TEMPLATED_ORIGIN = (
    "the scheme, host or port comes from a template, so a run's data could send the request "
    "anywhere: write the origin literally and end it with '/' or '?' before the first template, "
    "e.g. 'https://api.example.com/items/{{ inputs.id }}' (templates fill only the path and query); "
    "for an internal service, write its address and list it in SIGNOFF_HTTP_ALLOW"
)


def url_problem(url: str) -> str | None:
    """What is wrong with an ``http`` node's URL template, or None.

    The part before the first template tag must hold the whole origin (scheme, host, port) and
    end it with ``/``, ``?`` or ``#``, so rendering can only change what follows.
    """
    tag = _TAG.search(url)
    literal = url if tag is None else url[: tag.start()]
    match = _ORIGIN.match(literal)
    if match is None or (tag is not None and match["rest"] is None):
        if tag is not None:
            return _TEMPLATED_ORIGIN
        return f"url {url!r} must be an absolute URL starting with http:// or https://"
    if match["scheme"].lower() not in {"http", "https"}:
        return f"url {url!r} must start with http:// or https://"
    authority = match["authority"]
    if "@" in authority:
        return "the URL carries credentials ('user@host'): send them in a header (e.g. Authorization)"
    if not authority or any(c == "\\" or c.isspace() or not c.isprintable() for c in authority):
        return f"url {url!r}: the host is empty or holds a backslash, space or control character"
    try:
        _origin(f"http://{authority}/")
    except ValueError:
        return f"url {url!r}: the port must be a number from 0 to 65535"
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port. Raises ValueError on a bad port."""
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").rstrip("."), parts.port


def _check_origin(source: str, rendered: str) -> None:
    """The rendered URL must keep the origin written in the workflow (a second line of defence)."""
    tag = _TAG.search(source)
    literal = source if tag is None else source[: tag.start()]
    try:
        written, sent = _origin(literal), _origin(rendered)
        credentials = urlsplit(rendered).username is not None
    except ValueError as exc:
        raise SkillFailed(f"request.url rendered to an invalid URL: {exc}") from exc
    if sent != written or credentials:
        raise SkillFailed(
            f"request.url rendered to {_show(sent)}, not the origin written in the workflow "
            f"({_show(written)}); a template may fill only the path and query"
        )


def _show(origin: tuple[str, str, int | None]) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}" + ("" if port is None else f":{port}")


async def _send(ctx: NodeContext, request: HttpRequest) -> HttpResponse:
    assert ctx.deps.http is not None
    attempts = ctx.node.retries + 1
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            response = await ctx.deps.http.request(request)
        except SkillFailed as exc:
            if not exc.retryable or attempt == attempts:
                raise
        else:
            if response.status < 500 or attempt == attempts:
                return response
        await ctx.deps.clock.sleep(delay)
        delay = min(delay * 2, 30.0)
    raise SkillFailed(f"{request.method} {request.url} failed after {attempts} attempts", retryable=True)


def _deliverable(response: HttpResponse) -> Deliverable:
    parsed: Any = None
    try:
        parsed = json.loads(response.text) if response.text else None
    except ValueError:
        parsed = None
    data: dict[str, Any] = {"status": response.status, "body": parsed}
    if isinstance(parsed, dict):
        data.update({k: v for k, v in parsed.items() if k not in data})
    return Deliverable(text=response.text, data=data)
