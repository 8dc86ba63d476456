"""The Slack surface end to end over Socket Mode: FakeSlack's websocket, acks as envelope frames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.scenario._flow import full_scenario
from tests.scenario._harness import SlackEnv, slack_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", socket=True) as running:
        yield running


async def test_missing_field_to_completed_run_over_socket_mode(env: SlackEnv) -> None:
    assert env.fake.calls_to("apps.connections.open"), "the URL came from the fake"
    await full_scenario(env)
    acks = [f for f in env.fake.socket_frames if "envelope_id" in f]
    assert len(acks) >= 6
