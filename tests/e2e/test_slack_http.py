"""The Slack surface end to end over HTTP: signed requests to /slack/events on the real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.blocks.checkpoint import APPROVE, EDIT, EDIT_SUBMIT
from bot.slack.listeners._common import OPEN_FORM
from engine.model import Delivery
from tests.scenario._flow import full_scenario, has_buttons, opened_view, start_waiting
from tests.scenario._harness import GROUP_MEMBER, MANAGER, STRANGER, SlackEnv, slack_env
from tests.unit.bot.test_slack_manifest import SCOPES_USED


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as running:
        yield running


async def test_missing_field_to_completed_run_over_http(env: SlackEnv) -> None:
    await full_scenario(env)
    called = {c.method for c in env.fake.calls if not c.method.startswith("hooks.")}
    assert called <= set(SCOPES_USED) | {"auth.test", "views.open", "views.publish"}, "manifest scopes"


async def _counts(env: SlackEnv) -> tuple[int, int, int]:
    store = env.container.store
    return (
        len(await store.list_runs()),
        len(await store.list_checkpoints(open_only=True)),
        len(await store.list_decisions()),
    )


async def test_non_assignee_click_is_refused_and_changes_nothing(env: SlackEnv) -> None:
    cp = await start_waiting(env)
    before = await _counts(env)
    status, body = await env.send("interaction", env.click(APPROVE, cp.id, STRANGER))
    assert (status, body) == (200, "")
    refusal = await env.until(lambda: [t for t in env.replies(STRANGER) if t.startswith("Only ")])
    assert refusal[0].endswith("can decide this. Nothing was changed.")
    assert await _counts(env) == before
    assert not env.fake.calls_to("chat.update")


async def test_second_click_is_told_who_won(env: SlackEnv) -> None:
    cp = await start_waiting(env)
    await env.send("interaction", env.click(APPROVE, cp.id, MANAGER))
    await env.until(lambda: env.container.store.list_decisions())
    await env.send("interaction", env.click(APPROVE, cp.id, GROUP_MEMBER))
    told = await env.until(lambda: [t for t in env.replies(GROUP_MEMBER) if t.startswith("Already")])
    assert told[0].startswith(f"Already approved by <@{MANAGER}> at ")
    assert len(await env.container.store.list_decisions()) == 1


async def test_rate_limited_post_is_retried_after_retry_after(env: SlackEnv) -> None:
    env.fake.rate_limit("chat.postMessage", retry_after=1)
    cp = await start_waiting(env)
    store = env.container.store

    async def both_posted() -> list[Delivery]:
        rows = await store.list_deliveries(checkpoint_id=cp.id)
        sent = [d for d in rows if d.kind == "checkpoint" and d.message_ts]
        return sent if len(sent) == 2 else []

    rows = await env.until(both_posted)
    assert sorted(d.attempts for d in rows) == [1, 2]
    cards = [c for c in env.fake.calls_to("chat.postMessage") if has_buttons(c)]
    assert len(cards) == 3, "the first post was refused with 429, then sent again"
    assert cards[-1].at - cards[0].at >= 1.0, "not before Retry-After"


async def test_expired_trigger_falls_back_to_an_open_form_button(env: SlackEnv) -> None:
    cp = await start_waiting(env)
    click = env.click(EDIT, cp.id, MANAGER)
    env.fake.api.triggers[click["trigger_id"]] -= 10  # issued 10 s ago: Slack says expired_trigger_id
    await env.send("interaction", click)
    dm = await env.until(
        lambda: [
            c for c in env.fake.calls_to("chat.postMessage") if "open_form" in str(c.params.get("blocks"))
        ]
    )
    assert dm[0].params["channel"] == env.fake.api.dm_channel(MANAGER)
    events = await env.container.store.audit_events(run_id=cp.run_id)
    failed = [e for e in events if e.kind == "slack.trigger_failed"]
    assert failed[0].payload["error"] == "expired_trigger_id"
    assert failed[0].actor == MANAGER

    again = env.click(OPEN_FORM, f"edit:{cp.id}", MANAGER)
    await env.send("interaction", again)
    assert (await opened_view(env, again["trigger_id"], EDIT_SUBMIT))["private_metadata"]


async def test_delegate_command(env: SlackEnv) -> None:
    last_day = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    status, _ = await env.send(
        "command", env.command(f"delegate <@{GROUP_MEMBER}|bob> until {last_day}", MANAGER)
    )
    assert status == 200
    told = await env.until(lambda: [t for t in env.replies(MANAGER) if "can decide for you until" in t])
    assert told[0].startswith(f"<@{GROUP_MEMBER}> can decide for you until {last_day}")
    [delegation] = await env.container.store.list_delegations()
    assert (delegation.delegator, delegation.delegate) == (MANAGER, GROUP_MEMBER)
    assert delegation.until.date() > date.fromisoformat(last_day)
    status, body = await env.send("command", env.command("delegate bob until someday", MANAGER))
    assert "delegate @user until YYYY-MM-DD" in str(body)
    await env.send("command", env.command(f"delegate <@{GROUP_MEMBER}> until 2001-01-01", MANAGER))
    refused = await env.until(lambda: [t for t in env.replies(MANAGER) if "must be in the future" in t])
    assert refused
    # only to someone who may hold the role, and for at most 30 days
    await env.send("command", env.command(f"delegate <@{STRANGER}> until {last_day}", MANAGER))
    assert await env.until(lambda: [t for t in env.replies(MANAGER) if "may not hold the role" in t])
    await env.send("command", env.command(f"delegate <@{GROUP_MEMBER}> until 2099-12-01", MANAGER))
    assert await env.until(lambda: [t for t in env.replies(MANAGER) if "at most 30 days" in t])
    assert len(await env.container.store.list_delegations()) == 1
    await env.send("command", env.command("delegate off", MANAGER))
    assert await env.until(lambda: [t for t in env.replies(MANAGER) if "no longer decide" in t])
    assert await env.container.store.list_delegations(active_at=env.container.clock.now()) == []


async def test_console_is_off_in_slack_mode(env: SlackEnv) -> None:
    base = env.url.rsplit("/slack/", 1)[0]
    async with env.http.get(f"{base}/healthz") as response:
        assert response.status == 200
    for path in ("/", "/runs", "/checkpoints/cp_1"):
        async with env.http.get(f"{base}{path}") as response:
            assert response.status == 404, path


async def test_the_audit_binds_a_click_to_the_message_it_was_made_on(env: SlackEnv) -> None:
    from engine.audit import sha256_of

    cp = await start_waiting(env)
    click = env.click(APPROVE, cp.id, MANAGER)
    await env.send("interaction", click)
    await env.until(lambda: env.container.store.list_decisions())
    [event] = [
        e for e in await env.container.store.audit_events(run_id=cp.run_id) if e.kind == "decision.recorded"
    ]
    message = click["message"]
    assert event.payload["seen_hash"] == sha256_of({"text": message.get("text"), "blocks": message["blocks"]})
    assert event.payload["shown_hash"] == cp.shown_hash


async def test_edit_asks_for_the_confirm_word_and_keeps_long_fields(tmp_path: Path) -> None:
    from engine.model import CheckpointStatus
    from tests.scenario._harness import WORKFLOW, text_input

    confirm = WORKFLOW.replace("    priority: high\n", "    priority: high\n    confirm: REFUND\n")
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", workflow=confirm) as env:
        cp = await start_waiting(env)
        click = env.click(EDIT, cp.id, MANAGER)
        await env.send("interaction", click)
        form = await opened_view(env, click["trigger_id"], EDIT_SUBMIT)
        assert "confirm" in [b.get("block_id") for b in form["blocks"]]
        note = {"f:message": text_input("A perfectly fine note to the customer")}
        status, ack = await env.send(
            "interaction", env.submission(form, {**note, "confirm": text_input("nope")}, MANAGER)
        )
        assert status == 200
        assert ack["response_action"] == "errors"
        assert "confirm" in ack["errors"]
        assert (await env.container.store.get_checkpoint(cp.id)).status is CheckpointStatus.open
        status, _ = await env.send(
            "interaction", env.submission(form, {**note, "confirm": text_input("REFUND")}, MANAGER)
        )
        assert status == 200
        resolved = await env.until(lambda: _resolved(env, cp.id))
        assert resolved


async def _resolved(env: SlackEnv, cp_id: str) -> bool:
    from engine.model import CheckpointStatus

    return (await env.container.store.get_checkpoint(cp_id)).status is CheckpointStatus.resolved
