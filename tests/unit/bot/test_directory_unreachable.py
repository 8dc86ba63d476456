"""A user group or channel that cannot be read counts nobody (failing closed), whatever the
failure: Slack's refusal, no connection, no answer in time."""

from __future__ import annotations

import socket

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.directory import SlackDirectory


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_slack_unreachable_counts_nobody() -> None:
    client = AsyncWebClient(token="xoxb-1", base_url=f"http://127.0.0.1:{_closed_port()}/api/", timeout=5)
    directory = SlackDirectory(client)
    assert await directory.group_members("S1") == []
    assert await directory.channel_members("C1") == []
