"""``http``: call an HTTP endpoint with retries and a stable idempotency key."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

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
        """URL must be http(s) or a template."""
        config = node.config
        assert isinstance(config, HttpConfig)
        url = config.request.url
        if not (url.startswith(("http://", "https://")) or url.lstrip().startswith("{{")):
            return [("request.url", f"url {url!r} must start with http:// or https://")]
        return []

    @classmethod
    async def execute(cls, ctx: NodeContext) -> NodeResult:
        """Send with retries on connection errors and 5xx; fail on other statuses."""
        if ctx.deps.http is None:
            raise SkillFailed("no HTTP client is configured for http nodes")
        spec = render_value(ctx.compiled["request"], ctx.scope)
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
        config = ctx.node.config
        assert isinstance(config, HttpConfig)
        ok = response.status in config.ok_status if config.ok_status else 200 <= response.status < 300
        if not ok:
            raise SkillFailed(
                f"{request.method} {request.url} answered {response.status}: {response.text[:300]}"
            )
        return Completed(output=_deliverable(response), input={"method": request.method, "url": request.url})


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
