"""``verify: {on_fail: ask_again}`` over Slack: signed requests, FakeSlack, the real Anthropic client
against the local fake Messages API.

Reject with a vague reason -> the modal closes -> the verifier's question arrives in the thread
of the approver's message with a button -> the form reopens pre-filled -> a better reason ->
the decision counts and the run goes on to its end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.blocks.checkpoint import APPROVE, REJECT, REJECT_SUBMIT, REOPEN
from bot.blocks.modals import REASON_BLOCK
from engine.model import CheckpointStatus, RunStatus
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import Call
from tests.scenario._flow import blocks_of, opened_view, start_waiting
from tests.scenario._harness import MANAGER, WORKFLOW, SlackEnv, slack_env, text_input

RULE = "A rejection needs a reason the requester can act on."
VERIFIED = WORKFLOW.replace(
    "    priority: high\n", f'    priority: high\n    verify: {{prompt: "{RULE}", on_fail: ask_again}}\n'
)
QUESTION = "Which refund policy does this request break?"


@pytest.fixture
async def llm() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
async def env(tmp_path: Path, llm: FakeAnthropic) -> AsyncIterator[SlackEnv]:
    db = f"sqlite:///{tmp_path}/s.db"
    async with slack_env(tmp_path, db, workflow=VERIFIED, llm_url=llm.base_url) as running:
        yield running


def _questions(env: SlackEnv) -> list[Call]:
    return [
        c
        for c in env.fake.calls_to("chat.postMessage")
        if c.params.get("thread_ts") and REOPEN in str(c.params.get("blocks"))
    ]


def _button(call: Call) -> dict[str, Any]:
    actions = [b for b in blocks_of(call) if b["type"] == "actions"]
    button: dict[str, Any] = actions[0]["elements"][0]
    return button


async def test_a_vague_reason_is_questioned_in_the_thread_then_counts(
    env: SlackEnv, llm: FakeAnthropic
) -> None:
    store = env.container.store
    llm.reply_tool({"ok": False, "reason": QUESTION}, input_tokens=220, output_tokens=18)
    llm.reply_tool({"ok": True, "reason": "actionable"})
    cp = await start_waiting(env)

    click = env.click(REJECT, cp.id, MANAGER)
    await env.send("interaction", click)
    form = await opened_view(env, click["trigger_id"], REJECT_SUBMIT)
    status, ack = await env.send(
        "interaction", env.submission(form, {REASON_BLOCK: text_input("no")}, MANAGER)
    )
    assert (status, ack) == (200, ""), "the modal closes at once; the model is called after the ack"

    (asked,) = await env.until(lambda: _questions(env))
    assert QUESTION in str(asked.params["text"])
    mine = [
        d
        for d in await store.list_deliveries(checkpoint_id=cp.id)
        if d.kind == "checkpoint" and d.target == f"user:{MANAGER}"
    ]
    assert (asked.params["channel"], asked.params["thread_ts"]) == (mine[0].channel_ref, mine[0].message_ts)
    assert (await store.get_checkpoint(cp.id)).status is CheckpointStatus.open
    assert not await store.list_decisions(checkpoint_id=cp.id)
    events = await store.audit_events(run_id=cp.run_id)
    questioned = [e for e in events if e.kind == "decision.questioned"]
    assert questioned[0].actor == MANAGER
    assert (questioned[0].payload["comment"], questioned[0].payload["input_tokens"]) == ("no", 220)
    prompt = str(llm.requests[0]["messages"][0]["content"])
    assert RULE in prompt
    assert '"comment": "no"' in prompt

    again = env.click(REOPEN, str(_button(asked)["value"]), MANAGER)
    await env.send("interaction", again)
    reopened = await opened_view(env, again["trigger_id"], REJECT_SUBMIT)
    reason = next(b for b in reopened["blocks"] if b.get("block_id") == REASON_BLOCK)
    assert reason["element"]["initial_value"] == "no", "pre-filled with what was submitted"

    better = "Customer already got refund R-88 for this order on 2 May; see ticket 4411."
    status, ack = await env.send(
        "interaction", env.submission(reopened, {REASON_BLOCK: text_input(better)}, MANAGER)
    )
    assert (status, ack) == (200, "")
    run = await env.until(lambda: _final(env, cp.run_id))
    assert run.status is RunStatus.rejected
    (decision,) = await store.list_decisions(checkpoint_id=cp.id)
    assert (decision.actor, decision.action, decision.comment) == (MANAGER, "reject", better)
    assert len(llm.requests) == 2
    updated = await env.until(lambda: env.fake.calls_to("chat.update"))
    assert "Rejected by" in str(updated[-1].params["text"])


async def _final(env: SlackEnv, run_id: str) -> Any:
    run = await env.container.store.get_run(run_id)
    return run if run.status.final else None


@pytest.fixture
async def flag_env(tmp_path: Path, llm: FakeAnthropic) -> AsyncIterator[SlackEnv]:
    db = f"sqlite:///{tmp_path}/s.db"
    flagging = VERIFIED.replace("on_fail: ask_again", "on_fail: flag")
    async with slack_env(tmp_path, db, workflow=flagging, llm_url=llm.base_url) as running:
        yield running


async def test_a_flagged_decision_stands_and_every_copy_says_why(
    flag_env: SlackEnv, llm: FakeAnthropic
) -> None:
    env = flag_env
    llm.reply_tool({"ok": False, "reason": "Approved without checking the order history."})
    cp = await start_waiting(env)
    await env.send("interaction", env.click(APPROVE, cp.id, MANAGER))

    def flagged_updates() -> list[Call]:
        return [c for c in env.fake.calls_to("chat.update") if "Flagged by the reviewer" in str(c.params)]

    updates = await env.until(
        lambda: len({c.params["channel"] for c in flagged_updates()}) == 2 and flagged_updates()
    )
    assert "Approved without checking the order history." in str(updates[-1].params["blocks"])
    assert "(flagged)" in str(updates[-1].params["text"])
    run = await env.until(lambda: _final(env, cp.run_id))
    assert run.status is RunStatus.succeeded
