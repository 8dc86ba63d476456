"""The Slack surface end to end over Socket Mode: FakeSlack's websocket, acks as envelope frames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.scenario._flow import full_scenario
from tests.scenario._harness import SlackEnv, fixture, slack_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", socket=True) as running:
        yield running


async def test_missing_field_to_completed_run_over_socket_mode(env: SlackEnv) -> None:
    assert env.fake.calls_to("apps.connections.open"), "the URL came from the fake"
    await full_scenario(env)
    acks = [f for f in env.fake.socket_frames if "envelope_id" in f]
    assert len(acks) >= 6


async def test_socket_mode_fixture_frames_reach_their_listeners(env: SlackEnv) -> None:
    frames = fixture("socket_mode_messages.json")
    command = dict(frames["slash_commands"]["payload"])
    with pytest.raises(TimeoutError):  # /hello-socket-mode is not ours: Bolt answers 404, so no ack
        await env.fake.socket_send("slash_commands", command, accepts_response_payload=True, timeout=0.5)
    command.update(command="/signoff", text="help")
    ack = await env.fake.socket_send("slash_commands", command, accepts_response_payload=True)
    assert "/signoff run" in ack["payload"]["text"]

    retried = frames["events_api_retried"]
    ack = await env.fake.socket_send(
        "events_api",
        retried["payload"],
        retry_attempt=retried["retry_attempt"],
        retry_reason=retried["retry_reason"],
    )
    assert ack["envelope_id"]
    mention = dict(frames["events_api_app_mention"]["payload"])
    assert mention["event_id"] == retried["payload"]["event_id"]
    dropped = await env.fake.socket_send("events_api", mention)
    assert dropped["envelope_id"], "same event_id as the retried one: acked and dropped"
    mention["event_id"] = "Ev0MENTION1"
    with pytest.raises(TimeoutError):  # app_mention is not subscribed in manifest.yml: no listener
        await env.fake.socket_send("events_api", mention, timeout=0.5)
