"""Every Slack fixture file, signed and POSTed to /slack/events: it reaches its listener or is refused.

Foreign ids (``/weather``, ``hitl_approve``, ``view-id``) are first sent as they are, and must
be refused as unhandled (404) without touching anything; then with our ids patched in, they
must reach our listener.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from slack_sdk.signature import Clock, SignatureVerifier

from bot.blocks.checkpoint import APPROVE, EDIT_SUBMIT, OPEN_WEB, REJECT_SUBMIT, RUN_INPUTS_SUBMIT
from bot.blocks.home import HOME_PAGE
from tests.scenario._flow import start_waiting
from tests.scenario._harness import (
    FIXTURES,
    MANAGER,
    STRANGER,
    SlackEnv,
    fixture,
    slack_env,
    text_input,
)

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as running:
        yield running


def interaction(payload: dict[str, Any]) -> str:
    return "payload=" + quote(json.dumps(payload))


async def counts(env: SlackEnv) -> tuple[int, ...]:
    store = env.container.store
    return (
        len(await store.list_runs()),
        len(await store.list_checkpoints()),
        len(await store.list_decisions()),
        len(await store.audit_events()),
    )


def test_every_fixture_file_is_covered() -> None:
    covered = {
        "url_verification.json",
        "slash_command.form",
        "slash_command.wire.form",
        "slash_command.parsed.json",
        "slash_command_signing_vector.json",
        "block_actions_message_button.json",
        "block_actions_message_button.bolt_python.json",
        "block_actions_home_tab.docs.json",
        "block_actions_modal.json",
        "view_submission_inputs.json",
        "view_submission.bolt_python.json",
        "view_closed.bolt_python.json",
        "view_closed.docs.json",
        "app_home_opened.json",
        "app_home_opened_with_view.json",
        "event_callback_message_im.json",
        "socket_mode_messages.json",
    }
    assert {p.name for p in FIXTURES.iterdir() if p.name != "README.md"} == covered


async def test_url_verification_answers_the_challenge(env: SlackEnv) -> None:
    body = (FIXTURES / "url_verification.json").read_text()
    status, text = await env.post(body, "application/json")
    assert status == 200
    assert fixture("url_verification.json")["challenge"] in text


async def test_foreign_payloads_are_refused_as_unhandled_and_change_nothing(env: SlackEnv) -> None:
    before = await counts(env)
    bodies = [
        ((FIXTURES / "slash_command.form").read_text().strip(), FORM),
        ((FIXTURES / "slash_command.wire.form").read_text().strip(), FORM),
        (interaction(fixture("block_actions_message_button.json")), FORM),
        (interaction(fixture("block_actions_message_button.bolt_python.json")), FORM),
        (interaction(fixture("block_actions_home_tab.docs.json")), FORM),
        (interaction(fixture("block_actions_modal.json")), FORM),
        (interaction(fixture("view_submission_inputs.json")), FORM),
        (interaction(fixture("view_submission.bolt_python.json")), FORM),
        (interaction(fixture("view_closed.bolt_python.json")), FORM),
        # No callback_id at all: Bolt cannot route it to any view listener.
        (interaction(fixture("view_closed.docs.json")), FORM),
    ]
    for body, ctype in bodies:
        status, text = await env.post(body, ctype)
        assert (status, json.loads(text)) == (404, {"error": "unhandled request"}), body[:80]
    assert await counts(env) == before
    assert [c.method for c in env.fake.calls] == ["auth.test"]


async def test_slash_command_forms_reach_the_command(env: SlackEnv) -> None:
    raw = (FIXTURES / "slash_command.form").read_text().strip()
    status, text = await env.post(
        raw.replace("/weather", "/signoff").replace("text=94070", "text=help"), FORM
    )
    assert status == 200
    assert "/signoff run" in text
    wire = (FIXTURES / "slash_command.wire.form").read_text().strip()
    status, text = await env.post(
        wire.replace("%2Fweather", "%2Fsignoff").replace("text=94070", "text=list"), FORM
    )
    assert status == 200
    assert "`refund`" in text
    status, text = await env.post(
        wire.replace("%2Fweather", "%2Fsignoff").replace("text=94070", "text=refnd"), FORM
    )
    assert "I don't know `refnd`" in text


async def test_signing_vector_verifies_with_a_frozen_clock_and_is_stale_now(env: SlackEnv) -> None:
    vector = fixture("slash_command_signing_vector.json")
    stamp = int(vector["headers"]["X-Slack-Request-Timestamp"])

    class Frozen(Clock):
        def now(self) -> float:
            return float(stamp)

    verifier = SignatureVerifier(vector["signing_secret"], clock=Frozen())
    assert verifier.is_valid(vector["body"], str(stamp), vector["headers"]["X-Slack-Signature"])
    async with env.http.post(env.url, data=vector["body"].encode(), headers=vector["headers"]) as response:
        assert response.status == 401


async def test_forged_and_stale_requests_get_401_and_change_nothing(env: SlackEnv) -> None:
    cp = await start_waiting(env)
    before = await counts(env)
    body = interaction(env.click(APPROVE, cp.id, MANAGER))
    assert (await env.post(body, FORM, secret="not-the-secret"))[0] == 401
    assert (await env.post(body, FORM, ts=int(time.time()) - 301))[0] == 401
    assert await counts(env) == before
    assert (await env.post(body, FORM))[0] == 200
    await env.until(lambda: env.container.store.list_decisions())


async def test_button_fixtures_reach_the_checkpoint_listeners(env: SlackEnv) -> None:
    cp = await start_waiting(env)
    stranger = fixture("block_actions_message_button.bolt_python.json")
    stranger["user"]["id"] = STRANGER
    stranger["response_url"] = env.fake.base_url + "hooks.stranger"
    stranger["actions"][0].update(action_id=APPROVE, value=cp.id)
    assert (await env.post(interaction(stranger), FORM))[0] == 200
    await env.until(lambda: env.fake.calls_to("hooks.stranger"))
    assert await env.container.store.list_decisions() == []

    modal = fixture("block_actions_modal.json")
    modal["actions"][0].update(action_id=OPEN_WEB)
    assert (await env.post(interaction(modal), FORM)) == (200, "")

    home = fixture("block_actions_home_tab.docs.json")
    home["actions"][0].update(action_id=HOME_PAGE, value="0")
    assert (await env.post(interaction(home), FORM))[0] == 200
    user = home["user"]["id"]
    await env.until(lambda: [c for c in env.fake.calls_to("views.publish") if c.params["user_id"] == user])


async def test_view_fixtures_reach_the_modal_listeners(env: SlackEnv) -> None:
    cp = await start_waiting(env)
    reject = fixture("view_submission_inputs.json")
    reject["user"]["id"] = MANAGER
    reject["view"].update(
        callback_id=REJECT_SUBMIT,
        private_metadata=json.dumps({"checkpoint_id": cp.id, "version": cp.version}),
        state={"values": {"reason": text_input("  ")}},
    )
    status, text = await env.post(interaction(reject), FORM)
    assert (status, json.loads(text)) == (
        200,
        {"response_action": "errors", "errors": {"reason": "Required"}},
    )

    run = fixture("view_submission.bolt_python.json")
    values = {
        "f:customer": text_input("ACME"),
        "f:amount": {"value": {"type": "number_input", "value": "abc"}},
    }
    run["view"].update(
        callback_id=RUN_INPUTS_SUBMIT,
        private_metadata=json.dumps({"workflow_id": "refund"}),
        state={"values": values},
    )
    status, text = await env.post(interaction(run), FORM)
    assert json.loads(text) == {"response_action": "errors", "errors": {"f:amount": "Must be a number"}}

    closed = fixture("view_closed.bolt_python.json")
    closed["view"]["callback_id"] = EDIT_SUBMIT
    assert (await env.post(interaction(closed), FORM)) == (200, "")
    assert len(await env.container.store.list_decisions()) == 0


async def test_event_fixtures_reach_their_listeners_once(env: SlackEnv) -> None:
    opened = (FIXTURES / "app_home_opened.json").read_text()
    user = fixture("app_home_opened.json")["event"]["user"]
    assert await env.post(opened, "application/json") == (200, "")
    await env.until(lambda: env.fake.calls_to("views.publish"))
    # A redelivery (same event_id) is acknowledged and dropped.
    assert await env.post(opened, "application/json") == (200, "")
    with_view = fixture("app_home_opened_with_view.json")
    assert with_view["event_id"] == fixture("app_home_opened.json")["event_id"], "one capture, two files"
    assert (await env.post(json.dumps(with_view), "application/json"))[0] == 200
    await asyncio.sleep(0.2)
    assert len(env.fake.calls_to("views.publish")) == 1, "same event_id: dropped as a redelivery"
    with_view["event_id"] = "Ev0NEWEVENT1"
    assert (await env.post(json.dumps(with_view), "application/json"))[0] == 200
    publishes = await env.until(
        lambda: len(env.fake.calls_to("views.publish")) >= 2 and env.fake.calls_to("views.publish")
    )
    assert [c.params["user_id"] for c in publishes].count(user) >= 1
    assert len(publishes) == 2

    message = (FIXTURES / "event_callback_message_im.json").read_text()
    assert (await env.post(message, "application/json"))[0] == 200
    sender = fixture("event_callback_message_im.json")["event"]["user"]
    hint = await env.until(
        lambda: [c for c in env.fake.calls_to("chat.postMessage") if "/signoff help" in str(c.params)]
    )
    assert hint[0].params["channel"] == env.fake.api.dm_channel(sender)
