"""Slack says what a run's checkpoints decided, apart from its status: the run-finished notice
to the requester and ``/signoff status`` (signed payloads through the Bolt app, fake Slack)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.commands import Decide
from tests.scenario._flow import start_waiting
from tests.scenario._harness import MANAGER, REQUESTER, SlackEnv, slack_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as running:
        yield running


async def test_a_declined_run_says_declined_in_its_notice_and_status(env: SlackEnv) -> None:
    cp = await start_waiting(env)
    await env.container.engine.decide(
        Decide(checkpoint_id=cp.id, action="reject", actor=MANAGER, channel="cli", comment="duplicate")
    )
    ended = f"Run {cp.run_id} (refund) rejected; outcome: declined"
    await env.until(lambda: [c for c in env.fake.calls_to("chat.postMessage") if ended in str(c.params)])

    status, _ = await env.send("command", env.command(f"status {cp.run_id}"))
    assert status == 200
    said = await env.until(lambda: [t for t in env.replies(REQUESTER) if cp.run_id in t and "outcome" in t])
    assert "*rejected*, outcome *declined*" in said[0]
