"""The Slack surface end to end over HTTP: signed requests to /slack/events on the real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.scenario._flow import full_scenario
from tests.scenario._harness import SlackEnv, slack_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as running:
        yield running


async def test_missing_field_to_completed_run_over_http(env: SlackEnv) -> None:
    await full_scenario(env)
