"""FakeSlack against the real slack_sdk clients: Web API contracts and the Socket Mode websocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.conftest import SLACK_FIXTURES
from tests.fakes.slack import FakeSlack, sign_request

FIXTURES = SLACK_FIXTURES


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(usergroups={"S0OPS": ["U1", "U2"]}) as slack:
        yield slack


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.base_url)


async def test_post_then_update(fake: FakeSlack, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel="C1", text="hi", blocks=[{"type": "divider"}])
    second = await client.chat_postMessage(channel="C1", text="again")
    assert first["ok"]
    assert first["channel"] == "C1"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == [{"type": "divider"}]

    updated = await client.chat_update(channel="C1", ts=first["ts"], text="done", blocks=[])
    assert updated["ts"] == first["ts"]
    assert updated["text"] == "done"
    assert [c.method for c in fake.calls] == ["chat.postMessage", "chat.postMessage", "chat.update"]
    assert fake.calls_to("chat.update")[0].params["ts"] == first["ts"]


async def test_update_of_unknown_message_fails(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C1", ts="1.000001", text="x")
    assert info.value.response["error"] == "message_not_found"


async def test_history_is_newest_first_with_metadata_only_when_asked(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    tag = {"event_type": "signoff_delivery", "event_payload": {"delivery_id": "dlv_1"}}
    first = await client.chat_postMessage(channel="C1", text="card", metadata=tag)
    assert first["message"]["metadata"] == tag
    second = await client.chat_postMessage(channel="C1", text="plain")
    await client.chat_postMessage(channel="C1", thread_ts=first["ts"], text="reply")  # not top-level
    broadcast = await client.chat_postMessage(
        channel="C1", thread_ts=first["ts"], text="also here", reply_broadcast=True
    )
    await client.chat_postMessage(channel="C2", text="elsewhere")

    history = await client.conversations_history(channel="C1", include_all_metadata=True)
    assert [m["ts"] for m in history["messages"]] == [broadcast["ts"], second["ts"], first["ts"]]
    assert history["messages"][-1]["metadata"] == tag
    assert history["has_more"] is False
    assert history["response_metadata"] == {"next_cursor": ""}
    bare = await client.conversations_history(channel="C1")
    assert all("metadata" not in m for m in bare["messages"])

    # chat.update keeps the metadata unless it is given new metadata
    await client.chat_update(channel="C1", ts=first["ts"], text="decided", blocks=[])
    again = await client.conversations_history(channel="C1", oldest=second["ts"], include_all_metadata=True)
    assert [m["ts"] for m in again["messages"]] == [broadcast["ts"]], "oldest is exclusive"
    inclusive = await client.conversations_history(
        channel="C1", oldest=first["ts"], latest=first["ts"], inclusive=True, include_all_metadata=True
    )
    assert [(m["text"], m["metadata"]) for m in inclusive["messages"]] == [("decided", tag)]


async def test_history_pages_with_a_cursor(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = [(await client.chat_postMessage(channel="C1", text=str(n)))["ts"] for n in range(5)]
    page = await client.conversations_history(channel="C1", limit=2)
    assert [m["ts"] for m in page["messages"]] == posted[:2:-1][:2]
    assert page["has_more"] is True
    rest = await client.conversations_history(
        channel="C1", limit=10, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in rest["messages"]] == posted[2::-1]
    assert rest["has_more"] is False
    with pytest.raises(SlackApiError) as info:
        await client.conversations_history(channel="U1")
    assert info.value.response["error"] == "channel_not_found"


async def test_api_path_and_form_bodies_are_served(fake: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
    opened = await client.conversations_open(users="U1")
    assert opened["channel"]["id"].startswith("D")
    assert fake.calls_to("conversations.open")[0].params["users"] == "U1"
    async with aiohttp.ClientSession() as http:
        form = {"token": "xoxb-test", "channel": "U1", "text": "from a form"}
        async with http.post(fake.base_url + "chat.postMessage", data=form) as res:
            body = await res.json()
    assert body["ok"]
    assert body["channel"] == opened["channel"]["id"]


async def test_rate_limit_surfaces_with_retry_after(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.rate_limit("chat.update", retry_after=7)
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C1", ts="1.1", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    assert info.value.response["error"] == "ratelimited"


async def test_scripted_failure_and_server_error(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail("chat.postMessage", error="channel_not_found")
    fake.server_error("auth.test")
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C1", text="x")
    assert info.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as server:
        await client.auth_test()
    assert server.value.response.status_code == 500
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]  # the script is used up


async def test_bad_token_is_refused(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as info:
        await AsyncWebClient(token="nope", base_url=fake.base_url).auth_test()
    assert info.value.response["error"] == "invalid_auth"


async def test_trigger_ids_are_single_use_and_expire() -> None:
    clock = _Clock()
    async with FakeSlack(clock=clock) as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        view = {"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": []}
        trigger = fake.new_trigger_id()
        opened = await client.views_open(trigger_id=trigger, view=view)
        assert opened["view"]["id"].startswith("V")
        with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
            await client.views_open(trigger_id=trigger, view=view)
        late = fake.new_trigger_id()
        clock.now += 3.5
        with pytest.raises(SlackApiError, match="expired_trigger_id"):
            await client.views_open(trigger_id=late, view=view)
        updated = await client.views_update(
            view_id=opened["view"]["id"], view=view, hash=opened["view"]["hash"]
        )
        assert updated["view"]["id"] == opened["view"]["id"]
        with pytest.raises(SlackApiError, match="hash_conflict"):
            await client.views_update(view_id=opened["view"]["id"], view=view, hash=opened["view"]["hash"])


async def test_usergroups_users_and_publish(fake: FakeSlack, client: AsyncWebClient) -> None:
    assert (await client.usergroups_users_list(usergroup="S0OPS"))["users"] == ["U1", "U2"]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        await client.usergroups_users_list(usergroup="S0NONE")
    fake.users["U7"] = {"name": "ana", "tz": "Europe/Lisbon"}
    assert (await client.users_info(user="U7"))["user"]["tz"] == "Europe/Lisbon"
    published = await client.views_publish(user_id="U7", view={"type": "home", "blocks": []})
    assert published["view"]["type"] == "home"
    assert (await client.auth_test())["user_id"] == "U0BOT"


def test_sign_request_matches_the_docs_vector() -> None:
    vector = json.loads((FIXTURES / "slash_command_signing_vector.json").read_text())
    body = vector["body"].encode()
    headers = sign_request(
        vector["signing_secret"], body, ts=int(vector["headers"]["X-Slack-Request-Timestamp"])
    )
    assert headers == {k: v for k, v in vector["headers"].items() if k.startswith("X-Slack")}


def test_sign_request_is_accepted_by_the_sdk_verifier() -> None:
    body = b"payload=%7B%7D"
    headers = sign_request("s3cret", body)
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)


async def test_socket_mode_hello_envelope_and_ack(fake: FakeSlack) -> None:
    socket = SocketModeClient(app_token="xapp-1-test", web_client=AsyncWebClient(base_url=fake.base_url))
    seen: list[dict[str, Any]] = []
    hello = asyncio.Event()

    async def on_message(client: Any, message: dict[str, Any], raw: str | None) -> None:
        if message.get("type") == "hello":
            hello.set()

    async def on_request(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        seen.append(request.payload)
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload={"response_action": "clear"})
        )

    socket.message_listeners.append(on_message)
    socket.socket_mode_request_listeners.append(on_request)
    try:
        await socket.connect()  # type: ignore[no-untyped-call]
        await asyncio.wait_for(hello.wait(), 3)
        assert fake.calls_to("apps.connections.open")
        messages = json.loads((FIXTURES / "socket_mode_messages.json").read_text())
        payload = messages["interactive_shortcut"]["payload"]
        ack = await fake.socket_send("interactive", payload, accepts_response_payload=True)
        assert ack["payload"] == {"response_action": "clear"}
        assert seen == [payload]
        retried = messages["events_api_retried"]
        ack2 = await fake.socket_send(
            "events_api", retried["payload"], retry_attempt=1, retry_reason="timeout"
        )
        assert set(ack2) >= {"envelope_id"}
    finally:
        await socket.close()  # type: ignore[no-untyped-call]
