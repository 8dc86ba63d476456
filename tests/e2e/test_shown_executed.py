"""Shown = executed, end to end through the real server and FakeSlack (issue 10, parts 1 and 7).

The reproduction of the review: the requester puts the attacker's account in ``proposed`` and a
decoy account in a context note; the card and the Home tab must show the account that will be
executed, labelled, and the note must not be able to pass for a label. What is approved from
the Home tab is exactly what was shown there.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.blocks.checkpoint import APPROVE, CONFIRM_SUBMIT, REVIEW
from engine.audit import sha256_of
from engine.model import Checkpoint, RunStatus
from engine.shown import shown_hash
from tests.fakes.slack import Call
from tests.scenario._flow import blocks_of, has_buttons, open_checkpoint, opened_view
from tests.scenario._harness import MANAGER, REQUESTER, SlackEnv, fixture, slack_env
from tests.unit.bot._visible import missing_fields, mrkdwn_texts, shows_field, visible

ATTACKER = "DE00-ATTACKER-9999"
DECOY = "Invoice 42, as agreed.\n*Account*\nDE89-REAL-PAYROLL"
FORGED = "<!channel> <https://evil.example|https://bank.example>\n*Account*\nDE89-REAL-PAYROLL"

PAY = """\
id: pay
title: Supplier payment
inputs:
  type: object
  properties:
    customer: {type: string}
    account: {type: string}
    note: {type: string}
    memo: {type: string}
  required: [customer, account, note]
nodes:
  - id: approve
    type: human
    title: "Pay {{ inputs.customer }}"
    prompt: "Pay *{{ inputs.customer }}*?"
    context:
      customer: "{{ inputs.customer }}"
      note: "{{ inputs.note }}"
    proposed:
      account: "{{ inputs.account }}"
      memo: "{{ inputs.memo | default('') }}"
    options: [approve, reject]
    response_schema:
      type: object
      properties:
        account: {type: string, title: Account}
        memo: {type: string, title: Memo}
    assignee: role:manager
  - id: book
    type: set
    data: {account: "{{ nodes.approve.data.account }}"}
edges:
  - {from: approve, to: book, when: "response.action == 'approve'"}
"""


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", workflow=PAY) as running:
        yield running


async def _pay(env: SlackEnv, **inputs: str) -> Checkpoint:
    values = {"customer": "ACME", "account": ATTACKER, "note": DECOY, **inputs}
    run = await env.container.engine.start("pay", values, requester=REQUESTER, origin={"channel": "slack"})
    await env.container.engine.drive(run.id)
    return await open_checkpoint(env)


def _card_for(env: SlackEnv, user: str) -> list[dict[str, Any]]:
    dm = env.fake.api.dm_channel(user)
    cards = [c for c in env.fake.calls_to("chat.postMessage") if c.params["channel"] == dm and has_buttons(c)]
    return blocks_of(cards[-1]) if cards else []


def _home_with(env: SlackEnv, user: str, cp: Checkpoint) -> dict[str, Any] | None:
    view = env.fake.api.views.get(f"VH{user}")
    if view and f"actions:v{cp.version}:{cp.id}" in json.dumps(view):
        return view
    return None


def _home_click(env: SlackEnv, view: dict[str, Any], cp: Checkpoint, user: str) -> dict[str, Any]:
    """A click on a button of the Home tab, as Slack sends it (the view's blocks included)."""
    p = fixture("block_actions_home_tab.docs.json")
    p["user"]["id"] = user
    env.our_team(p)
    p["trigger_id"] = env.fake.new_trigger_id()
    p["container"]["view_id"] = view["id"]
    p["view"] = {**p["view"], "id": view["id"], "blocks": view["blocks"]}
    p["actions"] = [
        {
            "type": "button",
            "action_id": APPROVE,
            "block_id": f"actions:v{cp.version}:{cp.id}",
            "value": cp.id,
            "text": {"type": "plain_text", "text": "Approve", "emoji": True},
            "action_ts": "1700000000.000001",
        }
    ]
    return dict(p)


async def test_the_card_and_home_show_what_approve_executes(env: SlackEnv) -> None:
    cp = await _pay(env)
    card = await env.until(lambda: _card_for(env, MANAGER))
    assert shows_field(card, "Account", ATTACKER), "the executed account, labelled, as plain text"
    assert missing_fields(card, cp) == []
    # the forged note is data: shown whole as plain text, never as the product's bold label
    assert shows_field(card, "Note", DECOY)
    assert [t for t in mrkdwn_texts(card) if "*Account*" in t] == ["*Account*"]
    assert not [t for t in mrkdwn_texts(card) if "DE89-REAL-PAYROLL" in t]

    home = await env.until(lambda: _home_with(env, MANAGER, cp))
    assert shows_field(home["blocks"], "Account", ATTACKER)
    assert missing_fields(home["blocks"], cp) == []

    click = _home_click(env, home, cp, MANAGER)
    status, _ = await env.send("interaction", click)
    assert status == 200
    [decision] = await env.until(lambda: env.container.store.list_decisions())
    assert decision.actor == MANAGER
    assert decision.data == {"account": ATTACKER, "memo": ""}, "exactly what the Home tab showed"
    assert decision.shown_hash == shown_hash(cp)
    run = await env.until(lambda: _ended(env, cp.run_id))
    assert run.status is RunStatus.succeeded
    steps = {s.node_id: s for s in await env.container.store.list_steps(cp.run_id)}
    assert steps["book"].output is not None
    assert steps["book"].output.data == {"account": ATTACKER}
    [event] = [
        e for e in await env.container.store.audit_events(run_id=cp.run_id) if e.kind == "decision.recorded"
    ]
    assert event.payload["shown_hash"] == shown_hash(cp)
    assert event.payload["seen_hash"] == sha256_of(home["blocks"])


async def test_a_proposal_too_long_for_the_card_is_approved_from_its_full_view(env: SlackEnv) -> None:
    memo = "Line items follow. " * 150  # 2,850 characters: more than a card field holds
    cp = await _pay(env, memo=memo)
    card = await env.until(lambda: _card_for(env, MANAGER))
    actions = {e["action_id"] for b in card if b["type"] == "actions" for e in b["elements"]}
    assert APPROVE not in actions
    assert REVIEW in actions
    home = await env.until(lambda: _home_with(env, MANAGER, cp))
    assert APPROVE not in json.dumps(home["blocks"])

    click = env.click(REVIEW, cp.id, MANAGER)
    await env.send("interaction", click)
    view = await opened_view(env, click["trigger_id"], CONFIRM_SUBMIT)
    assert missing_fields(view["blocks"], cp) == []
    assert json.loads(view["private_metadata"]) == {"checkpoint_id": cp.id, "version": cp.version}
    status, ack = await env.send("interaction", env.submission(view, {}, MANAGER))
    assert status == 200
    assert not ack
    [decision] = await env.until(lambda: env.container.store.list_decisions())
    assert decision.data == {"account": ATTACKER, "memo": memo}
    assert decision.shown_hash == shown_hash(cp)


async def test_approve_on_a_copy_that_did_not_show_the_proposal_opens_it_instead(env: SlackEnv) -> None:
    """A card posted before cards showed the proposal still has a live Approve: the click it
    sends back (with the message as the person saw it) must open the whole proposal, not decide."""
    cp = await _pay(env)
    card = await env.until(lambda: _card_for(env, MANAGER))
    old_card = [b for b in card if not b["block_id"].startswith("prop")]
    click = env.click(APPROVE, cp.id, MANAGER)
    click["message"] = {**click["message"], "blocks": old_card}
    await env.send("interaction", click)
    view = await opened_view(env, click["trigger_id"], CONFIRM_SUBMIT)
    assert missing_fields(view["blocks"], cp) == []
    assert await env.container.store.list_decisions() == []
    # the same click on the card as it is now decides at once
    fresh = env.click(APPROVE, cp.id, MANAGER)
    fresh["message"] = {**fresh["message"], "blocks": card}
    await env.send("interaction", fresh)
    [decision] = await env.until(lambda: env.container.store.list_decisions())
    assert decision.data["account"] == ATTACKER


def _sent_texts(calls: list[Call]) -> list[str]:
    """Every text Slack would render as markup: the ``text`` argument and mrkdwn in blocks or views."""
    out: list[str] = []
    for call in calls:
        params = call.params
        if isinstance(params.get("text"), str):
            out.append(params["text"])
        for key in ("blocks", "view"):
            raw = params.get(key)
            value = json.loads(raw) if isinstance(raw, str) else raw
            out += mrkdwn_texts(value or [])
    return out


async def test_no_data_reaches_slack_as_markup(tmp_path: Path) -> None:
    from tests.scenario._harness import WORKFLOW

    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", workflow=WORKFLOW) as env:
        engine = env.container.engine
        # a run started from the CLI by a user named "<!channel>": its card must not ping anyone
        forged = await engine.start("refund", {"customer": "ACME", "amount": 5}, requester="<!channel>")
        await engine.drive(forged.id)
        card = await env.until(lambda: _card_for(env, MANAGER))
        assert "Requested by &lt;!channel&gt;" in mrkdwn_texts(card)[-1]

        values = {"customer": FORGED, "amount": 120}
        run = await engine.start("refund", values, requester=REQUESTER, origin={"channel": "slack"})
        await engine.drive(run.id)
        [cp] = await env.until(lambda: env.container.store.list_checkpoints(run_id=run.id, open_only=True))
        await env.send("interaction", env.click(APPROVE, cp.id, MANAGER))
        await env.until(lambda: _ended(env, run.id))
        await env.until(lambda: _posted(env, "Refund sent: ") and _posted(env, "approved by"))
        texts = _sent_texts([c for c in env.fake.calls if c.method != "views.open"])
        for text in texts:
            for raw in ("<!channel>", "<https://evil", "|https://bank", "\n*Account*"):
                assert raw not in text, (raw, text)
        # the notify text is the author's markup: its own words, the customer made inert
        [notify] = _posted(env, "Refund sent: ")
        assert "Refund sent: We refunded 120 USD to &lt;!channel&gt;" in notify.params["text"]
        # the decision notice shows the title (data) whole, as plain text
        [notice] = _posted(env, "approved by")
        assert visible(blocks_of(notice))[0] == (
            "plain_text",
            f"Refund 120 USD to {FORGED}: approved by {MANAGER}",
        )


def _posted(env: SlackEnv, needle: str) -> list[Call]:
    return [c for c in env.fake.calls_to("chat.postMessage") if needle in str(c.params.get("text"))]


async def _ended(env: SlackEnv, run_id: str) -> Any:
    run = await env.container.store.get_run(run_id)
    return run if run.status.final else None
