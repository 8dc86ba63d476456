"""The ``LLM`` port on Anthropic's Messages API, with typed output, retries and cost accounting."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anthropic
from anthropic import Omit, omit
from anthropic.types import Message, MessageParam, ToolChoiceToolParam, ToolParam, ToolUseBlock

from engine.errors import InvalidInput, SkillFailed
from engine.ports import LLMRequest, LLMResponse
from skills._schema import field_errors, schema_problem

__all__ = ["PRICES", "AnthropicLLM"]

log = logging.getLogger(__name__)

PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
}
"""USD per million tokens (input, output). Dated ids (``claude-sonnet-4-5-20250929``) match by prefix."""

TOOL_NAME = "submit"
EXTRACT_MAX_TOKENS = 512
EXTRACT_MAX_CHARS = 20_000
_RETRY_STATUSES = frozenset({408, 409, 429})
_REPAIR_ASK = "Call the submit tool again with input that fixes these errors."
_EXTRACT_SYSTEM = (
    "Extract the requested fields from the user's text by calling the submit tool. "
    "Use only what the text states; leave out optional fields the text does not give."
)

Sleep = Callable[[float], Awaitable[None]]


class _Usage:
    """Tokens and request count summed over every attempt of one call."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.attempts = 0


class AnthropicLLM:
    """``engine.ports.LLM`` backed by ``anthropic.AsyncAnthropic``.

    Transient failures (429, 529, other 5xx, 408/409, connection errors) are retried with
    exponential back-off, honouring ``retry-after``. The SDK's own retries are off so every
    attempt is counted here. Use ``async with`` (or ``aclose``) to release the HTTP pool.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout: float = 120.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Build the client.

        Args:
            api_key: Anthropic API key (``ANTHROPIC_API_KEY``); never logged.
            base_url: API root (``ANTHROPIC_BASE_URL``); None means Anthropic's.
            prices: model -> (USD per Mtok in, USD per Mtok out); defaults to ``PRICES``.
            max_attempts: HTTP attempts per request, counting the first.
            base_delay: first back-off in seconds, doubled on each retry.
            max_delay: longest back-off; a ``retry-after`` beyond it fails fast (retryable).
            timeout: seconds per HTTP attempt.
            sleep: awaited between attempts (tests pass a recorder).

        Raises:
            InvalidInput: an empty key or a non-positive attempt count.
        """
        if not api_key:
            raise InvalidInput("ANTHROPIC_API_KEY is empty", {"api_key": "is required"})
        if max_attempts < 1:
            raise InvalidInput("max_attempts must be at least 1", {"max_attempts": "must be >= 1"})
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )
        self._prices = dict(PRICES if prices is None else prices)
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._unpriced: set[str] = set()

    def __repr__(self) -> str:
        return f"AnthropicLLM(base_url={str(self._client.base_url)!r})"

    async def __aenter__(self) -> AnthropicLLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.close()

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer ``request``; with ``output_schema``, return validated ``data``.

        Raises:
            SkillFailed: the API failed (``retryable`` when trying later may help), or the
                model's structured answer was still invalid after one repair round.
        """
        return await self._complete(request, self._max_attempts)

    async def extract(self, text: str, schema: dict[str, Any], *, model: str) -> dict[str, Any] | None:
        """Pull the fields of ``schema`` out of ``text`` in one small, bounded call.

        Returns:
            The validated fields, or None when extraction failed for any reason; callers
            then keep the raw text.
        """
        request = LLMRequest(
            model=model,
            system=_EXTRACT_SYSTEM,
            prompt=f"<text>\n{text[:EXTRACT_MAX_CHARS]}\n</text>",
            output_schema=schema,
            max_tokens=EXTRACT_MAX_TOKENS,
        )
        try:
            response = await self._complete(request, min(2, self._max_attempts))
        except SkillFailed as e:
            log.info("extraction failed, falling back to raw text: %s", e)
            return None
        return response.data

    async def _complete(self, request: LLMRequest, max_attempts: int) -> LLMResponse:
        usage = _Usage()
        messages: list[MessageParam] = [{"role": "user", "content": request.prompt}]
        schema = request.output_schema
        if schema is None:
            message = await self._send(request, messages, usage, max_attempts)
            return self._response(request, _text(message), None, usage)
        problem = schema_problem(schema)
        if problem is not None:
            raise SkillFailed(f"output_schema {problem}", retryable=False)
        errors: dict[str, str] = {}
        for repair in (False, True):
            message = await self._send(request, messages, usage, max_attempts)
            data, errors = _structured(message, schema)
            if data is not None:
                text = _text(message) or json.dumps(data, ensure_ascii=False)
                return self._response(request, text, data, usage)
            if repair:
                break
            messages += _repair_turns(message, errors)
        raise SkillFailed(
            f"model output does not match output_schema after one repair: {_format(errors)}",
            retryable=False,
        )

    def _response(
        self, request: LLMRequest, text: str, data: dict[str, Any] | None, usage: _Usage
    ) -> LLMResponse:
        return LLMResponse(
            text=text,
            data=data,
            model=request.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=self.cost(request.model, usage.input_tokens, usage.output_tokens),
            attempts=usage.attempts,
        )

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """USD for the tokens at this model's price; 0.0 for a model missing from the table."""
        price = self._prices.get(model)
        if price is None:
            prefixes = [p for p in self._prices if model.startswith(f"{p}-")]
            if not prefixes:
                if model not in self._unpriced:
                    self._unpriced.add(model)
                    log.warning("no price for model %s; its cost is recorded as 0", model)
                return 0.0
            price = self._prices[max(prefixes, key=len)]
        return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000

    async def _send(
        self, request: LLMRequest, messages: list[MessageParam], usage: _Usage, max_attempts: int
    ) -> Message:
        for attempt in range(1, max_attempts + 1):
            usage.attempts += 1
            try:
                message = await self._create(request, messages)
            except anthropic.APIStatusError as e:
                failure = _status_failure(e)
                delay = _retry_after(e.response.headers) if failure.retryable else None
            except anthropic.APIConnectionError as e:
                failure = SkillFailed(f"Anthropic API unreachable: {type(e).__name__}", retryable=True)
                failure.__cause__ = e
                delay = None
            except anthropic.AnthropicError as e:
                raise SkillFailed(f"Anthropic client error: {type(e).__name__}", retryable=False) from e
            else:
                usage.input_tokens += message.usage.input_tokens
                usage.output_tokens += message.usage.output_tokens
                return message
            if not failure.retryable or attempt == max_attempts:
                raise failure
            wait = delay if delay is not None else min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
            if wait > self._max_delay:
                # Waiting minutes inside one node would hold the run's lease; let the engine reschedule.
                raise SkillFailed(f"{failure}; retry after {wait:.0f}s", retryable=True) from failure
            log.warning("%s; retrying in %.2fs (attempt %d/%d)", failure, wait, attempt, max_attempts)
            await self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _create(self, request: LLMRequest, messages: list[MessageParam]) -> Message:
        # temperature is not a typed parameter of this SDK release; the API still accepts it.
        extra = None if request.temperature is None else {"temperature": request.temperature}
        schema = request.output_schema
        tools: list[ToolParam] | Omit = (
            omit if schema is None else [{"name": TOOL_NAME, "input_schema": schema}]
        )
        forced: ToolChoiceToolParam | Omit = omit if schema is None else {"type": "tool", "name": TOOL_NAME}
        return await self._client.messages.create(
            model=request.model,
            max_tokens=request.max_tokens,
            messages=messages,
            system=omit if request.system is None else request.system,
            tools=tools,
            tool_choice=forced,
            extra_body=extra,
        )


def _text(message: Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def _tool_use(message: Message) -> ToolUseBlock | None:
    for block in message.content:
        if isinstance(block, ToolUseBlock) and block.name == TOOL_NAME:
            return block
    return None


def _structured(message: Message, schema: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    block = _tool_use(message)
    if block is None:
        return None, {"": f"no call to the {TOOL_NAME} tool (stop_reason {message.stop_reason})"}
    errors = field_errors(schema, block.input)
    if not errors and message.stop_reason == "max_tokens":
        errors = {"": "the answer was cut off at max_tokens"}
    return (None, errors) if errors else (dict(block.input), {})


def _repair_turns(message: Message, errors: dict[str, str]) -> list[MessageParam]:
    block = _tool_use(message)
    feedback = f"Invalid input:\n{_format(errors, sep=chr(10))}\n{_REPAIR_ASK}"
    if block is None:
        return [message.to_param(), {"role": "user", "content": feedback}]
    return [
        message.to_param(),
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": block.id, "is_error": True, "content": feedback}
            ],
        },
    ]


def _format(errors: dict[str, str], sep: str = "; ") -> str:
    return sep.join(f"{field or '(root)'}: {message}" for field, message in errors.items())


def _status_failure(e: anthropic.APIStatusError) -> SkillFailed:
    status = e.status_code
    kind, detail = "", ""
    if isinstance(e.body, dict) and isinstance(e.body.get("error"), dict):
        kind = str(e.body["error"].get("type", ""))
        detail = str(e.body["error"].get("message", ""))
    retryable = status in _RETRY_STATUSES or status >= 500
    failure = SkillFailed(f"Anthropic API {status} {kind}: {detail}".rstrip(": "), retryable=retryable)
    failure.__cause__ = e
    return failure


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP-date: fall back to our own back-off
        if seconds >= 0:
            return seconds
    return None
