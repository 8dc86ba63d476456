"""A local fake of Anthropic's Messages API, spoken over HTTP so the real SDK client can be used.

    async with FakeAnthropic() as fake:
        fake.reply_tool({"summary": "ok"})
        fake.rate_limited(retry_after=2)
        llm = AnthropicLLM(api_key="sk-test", base_url=fake.base_url)

Replies are served from a scripted queue in order; when it is empty the fake answers a forced
tool call with an input built from the tool's ``input_schema``, and anything else with a text
echo of the last user message. Every request is recorded.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["FakeAnthropic", "Recorded", "Reply", "minimal_instance"]


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeAnthropic:
    """An aiohttp app on an ephemeral 127.0.0.1 port serving ``POST [/prefix]/v1/messages``."""

    def __init__(self, *, api_key: str | None = None) -> None:
        """Create the fake; with ``api_key`` set, other keys get a 401 like the real API."""
        self.api_key = api_key
        self.calls: list[Recorded] = []
        self.queue: deque[Reply] = deque()
        self._ids = itertools.count(1)
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle)
        app.router.add_post("/{prefix:.+}/v1/messages", self._handle)
        self._server = TestServer(app, host="127.0.0.1")

    async def __aenter__(self) -> FakeAnthropic:
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.close()

    @property
    def base_url(self) -> str:
        """Root URL to pass as ``base_url`` (``ANTHROPIC_BASE_URL``)."""
        return str(self._server.make_url("")).rstrip("/")

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Recorded request bodies, oldest first."""
        return [call.body for call in self.calls]

    # ------------------------------------------------------------------ scripting

    def reply_text(self, text: str, *, input_tokens: int = 10, output_tokens: int = 5) -> None:
        """Queue an ``end_turn`` answer with one text block."""
        self._queue_message([{"type": "text", "text": text}], "end_turn", input_tokens, output_tokens)

    def reply_tool(
        self,
        tool_input: dict[str, Any],
        *,
        name: str = "submit",
        text: str | None = None,
        input_tokens: int = 10,
        output_tokens: int = 5,
        stop_reason: str = "tool_use",
    ) -> None:
        """Queue a ``tool_use`` answer, optionally preceded by a text block."""
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        content.append(self._tool_block(name, tool_input))
        self._queue_message(content, stop_reason, input_tokens, output_tokens)

    def reply_error(
        self, status: int, error_type: str, message: str = "", *, retry_after: float | None = None
    ) -> None:
        """Queue an error in the API's shape ``{"type": "error", "error": {...}}``."""
        headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        self.queue.append(Reply(status, self._error_body(error_type, message or error_type), headers))

    def rate_limited(self, *, retry_after: float | None = 1.0) -> None:
        """Queue a 429 ``rate_limit_error``."""
        self.reply_error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit.",
                         retry_after=retry_after)  # fmt: skip

    def overloaded(self) -> None:
        """Queue a 529 ``overloaded_error``."""
        self.reply_error(529, "overloaded_error", "Overloaded")

    def server_error(self) -> None:
        """Queue a 500 ``api_error``."""
        self.reply_error(500, "api_error", "Internal server error")

    # ------------------------------------------------------------------ serving

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        self.calls.append(Recorded(request.path, dict(request.headers), body))
        reply = self._authenticate(request) or self._check(body)
        if reply is None:
            reply = self.queue.popleft() if self.queue else self._default(body)
        message = reply.body
        if message.get("type") == "message":
            message = {**message, "model": body.get("model", "")}
        if message.get("usage", {}).get("input_tokens") == -1:
            message["usage"] = {**message["usage"], "input_tokens": _estimate(body.get("messages"))}
        headers = {"request-id": f"req_fake_{next(self._ids):04d}", **reply.headers}
        return web.json_response(message, status=reply.status, headers=headers)

    def _authenticate(self, request: web.Request) -> Reply | None:
        key = _presented_key(request)
        if key is None or (self.api_key is not None and key != self.api_key):
            return Reply(401, self._error_body("authentication_error", "invalid x-api-key"))
        return None

    def _check(self, body: dict[str, Any]) -> Reply | None:
        missing = [k for k in ("model", "max_tokens", "messages") if k not in body]
        if missing:
            return Reply(400, self._error_body("invalid_request_error", f"{missing[0]}: Field required"))
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool" and choice.get("name") not in _tool_schemas(body):
            return Reply(400, self._error_body("invalid_request_error", "tool_choice names an unknown tool"))
        return None

    def _default(self, body: dict[str, Any]) -> Reply:
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            schema = _tool_schemas(body)[choice["name"]]
            block = self._tool_block(choice["name"], minimal_instance(schema))
            return self._message([block], "tool_use", -1, 5)
        echo = {"type": "text", "text": f"echo: {_last_user_text(body.get('messages'))}"}
        return self._message([echo], "end_turn", -1, 5)

    def _queue_message(
        self, content: list[dict[str, Any]], stop_reason: str, input_tokens: int, output_tokens: int
    ) -> None:
        self.queue.append(self._message(content, stop_reason, input_tokens, output_tokens))

    def _message(
        self, content: list[dict[str, Any]], stop_reason: str, input_tokens: int, output_tokens: int
    ) -> Reply:
        body = {
            "id": f"msg_fake_{next(self._ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": "",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        return Reply(200, body)

    def _tool_block(self, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "tool_use",
            "id": f"toolu_fake_{next(self._ids):04d}",
            "name": name,
            "input": tool_input,
        }

    def _error_body(self, error_type: str, message: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": f"req_fake_{next(self._ids):04d}",
        }


def minimal_instance(schema: dict[str, Any]) -> Any:
    """A small value that satisfies common JSON Schemas (no ``$ref``, no patterns)."""
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return minimal_instance(schema[key][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        return {name: minimal_instance(sub) for name, sub in props.items()}
    if kind == "array":
        return [minimal_instance(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * max(int(schema.get("minLength", 0)), 1)
    if kind in ("number", "integer"):
        if "minimum" in schema:
            return schema["minimum"]
        return schema["exclusiveMinimum"] + 1 if "exclusiveMinimum" in schema else 0
    return False if kind == "boolean" else None


def _presented_key(request: web.Request) -> str | None:
    # SDK releases differ: older ones send x-api-key, newer ones an Authorization bearer.
    bearer = request.headers.get("Authorization", "")
    if bearer.startswith("Bearer "):
        return bearer.removeprefix("Bearer ")
    return request.headers.get("x-api-key")


def _tool_schemas(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t.get("name"): t.get("input_schema", {}) for t in body.get("tools") or []}


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(b.get("text", "") for b in content if b.get("type") == "text")
    return ""


def _estimate(messages: Any) -> int:
    # Roughly four characters per token, as the real tokenizer averages on English text.
    return max(1, len(json.dumps(messages or [])) // 4)
