"""``/signoff pause`` and ``/signoff resume`` (issue 14): signed slash commands through the Slack
surface against FakeSlack; a paused run takes the manager's Approve click but does not advance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.blocks.checkpoint import APPROVE
from bot.blocks.notices import RETRY
from engine.model import RunStatus
from tests.scenario._harness import MANAGER, REQUESTER, STRANGER, SlackEnv, slack_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as running:
        yield running


async def _said(env: SlackEnv, user: str, text: str) -> str:
    found: str = await env.until(lambda: next((r for r in env.replies(user) if text in r), None))
    return found


async def test_pause_and_resume_from_slack(env: SlackEnv) -> None:
    store = env.container.store
    status, _ = await env.send("command", env.command("run refund customer=ACME amount=120"))
    assert status == 200
    run = await env.until(lambda: _waiting(env))

    await env.send("command", env.command(f"pause {run.id}", user=STRANGER))
    assert "can pause it" in await _said(env, STRANGER, "Not allowed")
    await env.send("command", env.command(f"pause {run.id}"))
    await _said(env, REQUESTER, f"Paused run `{run.id}`")
    await env.send("command", env.command(f"pause {run.id}"))
    await _said(env, REQUESTER, "is paused by")
    await env.send("command", env.command(f"status {run.id}"))
    status_text = await _said(env, REQUESTER, "paused by <@")
    assert f"paused by <@{REQUESTER}>: `/signoff resume {run.id}`" in status_text

    (cp,) = await store.list_checkpoints(run_id=run.id)
    status, _ = await env.send("interaction", env.click(APPROVE, cp.id, MANAGER))
    assert status == 200
    decided = await env.until(lambda: _resolved(env, cp.id))
    assert decided
    held = await store.get_run(run.id)
    assert held.pending == ["send"]
    assert not held.status.final, "the decision was taken, the run did not advance"

    await env.send("command", env.command(f"resume {run.id}"))
    await _said(env, REQUESTER, f"Resumed run `{run.id}`")
    done = await env.until(lambda: _ended(env, run.id))
    assert done.status is RunStatus.succeeded
    kinds = [(e.kind, e.channel) for e in await store.audit_events(run_id=run.id)]
    assert ("run.paused", "slack") in kinds
    assert ("run.resumed", "slack") in kinds
    await env.send("command", env.command("resume run_nope"))
    await _said(env, REQUESTER, "There is no run `run_nope`")


async def _waiting(env: SlackEnv) -> object:
    runs = await env.container.store.list_runs()
    return runs[0] if runs and runs[0].status is RunStatus.waiting else None


async def _resolved(env: SlackEnv, cp_id: str) -> bool:
    return (await env.container.store.get_checkpoint(cp_id)).status.value == "resolved"


async def _ended(env: SlackEnv, run_id: str) -> object:
    run = await env.container.store.get_run(run_id)
    return run if run.status.final else None


FAILING = """\
id: refund
title: Customer refund
nodes:
  - id: draft
    type: set
    data: {amount: 120}
  - id: approval
    type: human
    prompt: "Refund 120 USD?"
    options: [approve, reject]
    assignee: role:manager
  - id: send
    type: set
    data: {label: "{{ nodes.draft.data.amount.cents }}"}
edges:
  - {from: draft, to: approval}
  - {from: approval, to: send, when: "response.action == 'approve'"}
"""


async def test_retry_on_a_failed_run_notice_reruns_without_asking_again(tmp_path: Path) -> None:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", workflow=FAILING) as env:
        store = env.container.store
        await env.send("command", env.command("run refund"))
        run = await env.until(lambda: _waiting(env))
        (cp,) = await store.list_checkpoints(run_id=run.id)
        await env.send("interaction", env.click(APPROVE, cp.id, MANAGER))
        failed = await env.until(lambda: _ended(env, run.id))
        assert failed.status is RunStatus.failed

        def retry_button() -> dict[str, object] | None:
            for call in env.fake.calls_to("chat.postMessage"):
                for block in call.params.get("blocks") or []:
                    if isinstance(block, dict) and block.get("type") == "actions":
                        button = block["elements"][0]
                        if button.get("action_id") == RETRY and button.get("value") == run.id:
                            return dict(button)
            return None

        button = await env.until(retry_button)
        assert "Retry" in str(button["text"])
        await env.send("interaction", env.click(RETRY, run.id, STRANGER))
        assert "can rerun it" in await _said(env, STRANGER, "Not allowed")

        await env.send("interaction", env.click(RETRY, run.id, REQUESTER))
        said = await _said(env, REQUESTER, f"Retrying run `{run.id}`")
        assert "from step `send`" in said
        (rerun,) = await env.until(lambda: store.reruns_of(run.id))
        again = await env.until(lambda: _ended(env, rerun.id))
        assert [s.node_id for s in await store.list_steps(rerun.id)] == ["draft", "approval", "send"]
        assert await store.list_checkpoints(run_id=rerun.id) == [], "nobody was asked again"
        assert again.status is RunStatus.failed, "pinned to the same version, the same node fails again"
        kinds = [(e.kind, e.channel) for e in await store.audit_events(run_id=run.id)]
        assert ("run.rerun", "slack") in kinds
