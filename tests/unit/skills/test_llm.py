"""AnthropicLLM against FakeAnthropic, through the real ``anthropic.AsyncAnthropic`` client."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from anthropic.types import Message
from anthropic.types.shared import ErrorResponse

from engine.errors import InvalidInput, SkillFailed
from engine.ports import LLMRequest
from skills.llm import PRICES, AnthropicLLM
from tests.fakes.anthropic import FakeAnthropic

KEY = "sk-ant-test-0123456789"
MODEL = "claude-sonnet-4-6"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "confidence": {"type": "number", "maximum": 1}},
    "required": ["summary", "confidence"],
}


class Sleeps(list[float]):
    """Records back-off delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=KEY) as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def llm(fake: FakeAnthropic, sleeps: Sleeps) -> AsyncIterator[AnthropicLLM]:
    async with AnthropicLLM(api_key=KEY, base_url=fake.base_url, sleep=sleeps) as client:
        yield client


def ask(prompt: str = "Summarize the ticket.", **kw: Any) -> LLMRequest:
    return LLMRequest(model=MODEL, prompt=prompt, **kw)


async def test_plain_text_answer(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    fake.reply_text("All good.", input_tokens=12, output_tokens=3)

    response = await llm.complete(ask(system="Be brief."))

    assert (response.text, response.data, response.attempts) == ("All good.", None, 1)
    body = fake.requests[0]
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "Summarize the ticket."}]
    assert "tools" not in body


async def test_output_schema_forces_submit_tool_and_returns_typed_data(
    fake: FakeAnthropic, llm: AnthropicLLM
) -> None:
    fake.reply_tool({"summary": "Login broken", "confidence": 0.9})

    response = await llm.complete(ask(output_schema=SCHEMA))

    assert response.data == {"summary": "Login broken", "confidence": 0.9}
    body = fake.requests[0]
    assert body["tools"] == [{"name": "submit", "input_schema": SCHEMA}]
    assert body["tool_choice"] == {"type": "tool", "name": "submit"}


async def test_invalid_tool_input_is_repaired_once(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    fake.reply_tool({"summary": "Login broken", "confidence": 7})
    fake.reply_tool({"summary": "Login broken", "confidence": 0.7})

    response = await llm.complete(ask(output_schema=SCHEMA))

    assert response.data == {"summary": "Login broken", "confidence": 0.7}
    assert response.attempts == 2
    first_tool_use = fake.requests[0]["messages"]
    repair = fake.requests[1]["messages"]
    assert repair[: len(first_tool_use)] == first_tool_use
    assert repair[1]["role"] == "assistant"
    assert repair[1]["content"][0]["type"] == "tool_use"
    result = repair[2]["content"][0]
    assert result["type"] == "tool_result"
    assert result["is_error"] is True
    assert result["tool_use_id"] == repair[1]["content"][0]["id"]
    assert "confidence" in result["content"]


async def test_gives_up_after_one_repair(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    fake.reply_tool({"summary": "x"})
    fake.reply_tool({"confidence": 0.5})

    with pytest.raises(SkillFailed, match="summary: is required") as caught:
        await llm.complete(ask(output_schema=SCHEMA))

    assert caught.value.retryable is False
    assert len(fake.calls) == 2


async def test_answer_without_tool_call_is_repaired(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    fake.reply_text("I think it is about logins.")
    fake.reply_tool({"summary": "Logins", "confidence": 0.5})

    response = await llm.complete(ask(output_schema=SCHEMA))

    assert response.data == {"summary": "Logins", "confidence": 0.5}
    assert fake.requests[1]["messages"][2]["role"] == "user"


async def test_rate_limit_honours_retry_after(fake: FakeAnthropic, llm: AnthropicLLM, sleeps: Sleeps) -> None:
    fake.rate_limited(retry_after=7)
    fake.reply_text("ok")

    response = await llm.complete(ask())

    assert response.text == "ok"
    assert response.attempts == 2
    assert sleeps == [7.0]


async def test_overloaded_and_server_errors_back_off_exponentially(
    fake: FakeAnthropic, llm: AnthropicLLM, sleeps: Sleeps
) -> None:
    fake.overloaded()
    fake.server_error()
    fake.overloaded()
    fake.reply_text("ok")

    response = await llm.complete(ask())

    assert response.text == "ok"
    assert response.attempts == 4
    assert sleeps == [0.5, 1.0, 2.0]


async def test_retries_exhausted_is_retryable(fake: FakeAnthropic, llm: AnthropicLLM, sleeps: Sleeps) -> None:
    for _ in range(4):
        fake.overloaded()

    with pytest.raises(SkillFailed, match="529 overloaded_error") as caught:
        await llm.complete(ask())

    assert caught.value.retryable is True
    assert len(fake.calls) == 4
    assert len(sleeps) == 3


async def test_retry_after_beyond_max_delay_fails_fast(
    fake: FakeAnthropic, llm: AnthropicLLM, sleeps: Sleeps
) -> None:
    fake.rate_limited(retry_after=120)

    with pytest.raises(SkillFailed, match="retry after 120s") as caught:
        await llm.complete(ask())

    assert caught.value.retryable is True
    assert (len(fake.calls), sleeps) == (1, [])


@pytest.mark.parametrize(("status", "kind"), [(400, "invalid_request_error"), (401, "authentication_error")])
async def test_client_errors_are_not_retried(
    fake: FakeAnthropic, llm: AnthropicLLM, sleeps: Sleeps, status: int, kind: str
) -> None:
    fake.reply_error(status, kind, "max_tokens: must be positive")

    with pytest.raises(SkillFailed, match=f"{status} {kind}") as caught:
        await llm.complete(ask())

    assert caught.value.retryable is False
    assert (len(fake.calls), sleeps) == (1, [])


async def test_connection_errors_are_retried(sleeps: Sleeps) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    async with AnthropicLLM(
        api_key=KEY, base_url=f"http://127.0.0.1:{closed_port}", max_attempts=3, sleep=sleeps
    ) as llm:
        with pytest.raises(SkillFailed, match="unreachable") as caught:
            await llm.complete(ask())

    assert caught.value.retryable is True
    assert sleeps == [0.5, 1.0]


async def test_tokens_and_cost_are_summed_over_attempts(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    fake.reply_tool({"summary": 1}, input_tokens=1_000, output_tokens=100)
    fake.server_error()
    fake.reply_tool({"summary": "ok", "confidence": 1}, input_tokens=1_500, output_tokens=200)

    response = await llm.complete(ask(output_schema=SCHEMA))

    usd_in, usd_out = PRICES[MODEL]
    assert (response.input_tokens, response.output_tokens, response.attempts) == (2_500, 300, 3)
    assert response.cost_usd == pytest.approx((2_500 * usd_in + 300 * usd_out) / 1e6)


async def test_dated_model_ids_use_the_family_price(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    fake.reply_text("ok", input_tokens=1_000_000, output_tokens=0)

    response = await llm.complete(LLMRequest(model=f"{MODEL}-20250929", prompt="hi"))

    assert response.cost_usd == pytest.approx(PRICES[MODEL][0])


async def test_unknown_model_costs_nothing_but_counts_tokens(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    fake.reply_text("ok", input_tokens=40, output_tokens=2)

    response = await llm.complete(LLMRequest(model="claude-future-9", prompt="hi"))

    assert (response.input_tokens, response.output_tokens, response.cost_usd) == (40, 2, 0.0)


async def test_price_table_can_be_overridden(fake: FakeAnthropic) -> None:
    fake.reply_text("ok", input_tokens=2_000_000, output_tokens=1_000_000)
    async with AnthropicLLM(api_key=KEY, base_url=fake.base_url, prices={"house-model": (1.0, 10.0)}) as llm:
        response = await llm.complete(LLMRequest(model="house-model", prompt="hi"))

    assert response.cost_usd == pytest.approx(12.0)


async def test_base_url_with_a_path_prefix_is_honoured(fake: FakeAnthropic) -> None:
    fake.reply_text("via proxy")
    async with AnthropicLLM(api_key=KEY, base_url=f"{fake.base_url}/anthropic") as llm:
        response = await llm.complete(ask())

    assert response.text == "via proxy"
    assert fake.calls[0].path == "/anthropic/v1/messages"


async def test_temperature_is_sent_only_when_set(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    await llm.complete(ask())
    await llm.complete(ask(temperature=0.2))

    assert "temperature" not in fake.requests[0]
    assert fake.requests[1]["temperature"] == 0.2


async def test_default_fake_answer_satisfies_the_schema(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    response = await llm.complete(ask(output_schema=SCHEMA))

    assert response.data == {"summary": "x", "confidence": 0}
    assert response.input_tokens > 0


async def test_invalid_output_schema_fails_before_any_call(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    with pytest.raises(SkillFailed, match="type: object"):
        await llm.complete(ask(output_schema={"type": "string"}))

    assert fake.calls == []


async def test_extract_returns_typed_fields_from_a_small_call(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    schema = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
    fake.reply_tool({"location": "Berlin"})

    data = await llm.extract("Ship it to our Berlin office please", schema, model=MODEL)

    assert data == {"location": "Berlin"}
    body = fake.requests[0]
    assert body["max_tokens"] <= 512
    assert "Berlin office" in body["messages"][0]["content"]


async def test_extract_falls_back_to_none(fake: FakeAnthropic, llm: AnthropicLLM) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fake.reply_tool({"n": "many"})
    fake.reply_tool({"n": "still many"})
    assert await llm.extract("lots of them", schema, model=MODEL) is None

    fake.reply_error(400, "invalid_request_error", "prompt is too long")
    assert await llm.extract("x" * 100_000, schema, model=MODEL) is None
    assert len(fake.requests[-1]["messages"][0]["content"]) < 21_000


async def test_api_key_is_sent_but_never_logged_or_shown(
    fake: FakeAnthropic, llm: AnthropicLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.rate_limited(retry_after=0)
    fake.reply_error(403, "permission_error", "nope")

    with pytest.raises(SkillFailed) as caught:
        await llm.complete(ask())

    assert fake.calls[0].headers.get("Authorization") == f"Bearer {KEY}"
    assert KEY not in caplog.text
    assert KEY not in str(caught.value)
    assert KEY not in repr(llm)


async def test_wrong_key_is_an_authentication_failure(fake: FakeAnthropic) -> None:
    async with AnthropicLLM(api_key="sk-wrong", base_url=fake.base_url) as llm:
        with pytest.raises(SkillFailed, match="401") as caught:
            await llm.complete(ask())
    assert caught.value.retryable is False


def test_empty_key_is_refused_at_construction() -> None:
    with pytest.raises(InvalidInput, match="ANTHROPIC_API_KEY"):
        AnthropicLLM(api_key="")


async def test_fake_answers_match_the_sdk_wire_types(fake: FakeAnthropic) -> None:
    fake.reply_text("hi")
    fake.reply_tool({"summary": "x", "confidence": 1}, text="Here you go.")
    fake.overloaded()
    body = {
        "model": MODEL,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "submit", "input_schema": SCHEMA}],
        "tool_choice": {"type": "tool", "name": "submit"},
    }
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as http:
        for expected_status in (200, 200, 529, 200):
            async with http.post(f"{fake.base_url}/v1/messages", json=body, headers=headers) as answer:
                assert answer.status == expected_status
                assert answer.headers["request-id"].startswith("req_")
                payload = await answer.json()
            if expected_status == 200:
                message = Message.model_validate(payload)
                assert message.usage.input_tokens > 0
                assert message.content[-1].type in ("text", "tool_use")
            else:
                assert ErrorResponse.model_validate(payload).error.type == "overloaded_error"
