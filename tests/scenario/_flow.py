"""The end-to-end Slack scenario, shared by the HTTP and the Socket Mode tests.

Slash command with a missing field -> modal -> bad value -> field error -> fix -> run pauses ->
approver clicks Edit -> modal -> submit -> every copy updated -> run completes -> requester told.
"""

from __future__ import annotations

import json
from typing import Any

from bot.blocks.checkpoint import EDIT, EDIT_SUBMIT, RUN_INPUTS_SUBMIT
from engine.model import Checkpoint, RunStatus
from tests.fakes.slack import Call
from tests.scenario._harness import (
    GROUP_MEMBER,
    MANAGER,
    REQUESTER,
    SlackEnv,
    number_input,
    text_input,
)


def view_of(call: Call) -> dict[str, Any]:
    """The ``view`` argument of a recorded ``views.*`` call."""
    view = call.params["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


def blocks_of(call: Call) -> list[dict[str, Any]]:
    """The ``blocks`` argument of a recorded ``chat.*`` call."""
    blocks = call.params.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def has_buttons(call: Call) -> bool:
    """True when the message has decision buttons."""
    return any(b["type"] == "actions" and b["block_id"].startswith("actions:") for b in blocks_of(call))


async def opened_view(env: SlackEnv, trigger: str, callback_id: str) -> dict[str, Any]:
    """The view FakeSlack stored for the ``views.open`` that used ``trigger``."""
    call = await env.until(
        lambda: next(
            (c for c in env.fake.calls_to("views.open") if c.params.get("trigger_id") == trigger), None
        )
    )
    sent = view_of(call)
    assert sent["callback_id"] == callback_id
    return next(v for v in reversed(env.fake.api.views.values()) if v.get("callback_id") == callback_id)


async def open_checkpoint(env: SlackEnv) -> Checkpoint:
    """Wait until the run paused and both assignees got their card; returns the checkpoint."""
    store = env.container.store
    cps: list[Checkpoint] = await env.until(lambda: store.list_checkpoints(open_only=True))
    await env.until(lambda: [c for c in env.fake.calls_to("chat.postMessage") if has_buttons(c)])
    return cps[0]


async def start_waiting(env: SlackEnv) -> Checkpoint:
    """Start a run with every input given; returns its open checkpoint."""
    status, _ = await env.send("command", env.command("run refund customer=ACME amount=120"))
    assert status == 200
    return await open_checkpoint(env)


async def full_scenario(env: SlackEnv) -> None:
    """The scenario of issue 3, with the assertions of each step."""
    fake, store = env.fake, env.container.store
    command = env.command('run refund customer="ACME Corp"')
    status, _ = await env.send("command", command)
    assert status == 200
    form = await opened_view(env, command["trigger_id"], RUN_INPUTS_SUBMIT)
    inputs = [b["block_id"] for b in form["blocks"] if b["type"] == "input"]
    assert inputs == ["f:amount"], "asks for exactly the missing field"

    _, ack = await env.send("interaction", env.submission(form, {"f:amount": number_input("-5")}, REQUESTER))
    assert ack == {"response_action": "errors", "errors": {"f:amount": "Must be at least 0"}}
    assert await store.list_runs() == []

    _, ack = await env.send("interaction", env.submission(form, {"f:amount": number_input("120")}, REQUESTER))
    assert not ack
    cp = await open_checkpoint(env)
    run = (await store.list_runs())[0]
    assert run.inputs == {"customer": "ACME Corp", "amount": 120}
    assert run.requester == REQUESTER
    dms = {u: fake.api.dm_channel(u) for u in (MANAGER, GROUP_MEMBER)}
    await env.until(lambda: len([c for c in fake.calls_to("chat.postMessage") if has_buttons(c)]) == 2)
    opened = {c.params["users"] for c in fake.calls_to("conversations.open")}
    assert {MANAGER, GROUP_MEMBER} <= opened
    cards = [c for c in fake.calls_to("chat.postMessage") if has_buttons(c)]
    assert {c.params["channel"] for c in cards} == set(dms.values())
    started = await env.until(lambda: fake.calls_to("chat.postEphemeral"))
    assert run.id in started[0].params["text"]
    assert started[0].params["user"] == REQUESTER

    click = env.click(EDIT, cp.id, MANAGER, channel=dms[MANAGER])
    status, _ = await env.send("interaction", click)
    assert status == 200
    edit = await opened_view(env, click["trigger_id"], EDIT_SUBMIT)
    field = next(b for b in edit["blocks"] if b.get("block_id") == "f:message")
    assert field["element"]["initial_value"] == cp.proposed["message"]

    _, ack = await env.send("interaction", env.submission(edit, {"f:message": text_input("short")}, MANAGER))
    assert ack == {"response_action": "errors", "errors": {"f:message": "Must be at least 10 characters"}}
    note = "Sorry for the trouble, refund sent."
    _, ack = await env.send("interaction", env.submission(edit, {"f:message": text_input(note)}, MANAGER))
    assert not ack

    updates = await env.until(lambda: len(fake.calls_to("chat.update")) >= 2 and fake.calls_to("chat.update"))
    copies = {
        (d.channel_ref, d.message_ts)
        for d in await store.list_deliveries(checkpoint_id=cp.id)
        if d.kind == "checkpoint" and d.message_ts
    }
    assert len(copies) == 2
    assert {(u.params["channel"], u.params["ts"]) for u in updates} == copies
    for update in updates:
        assert not has_buttons(update)
        text = json.dumps(blocks_of(update))
        assert "Changes" in text
        assert note in text
        assert f"<@{MANAGER}>" in text

    final = await env.until(lambda: _final(env, run.id))
    assert final.status is RunStatus.succeeded
    told = await env.until(lambda: _told(env, "Refund sent: " + note))
    assert told.params["channel"] == fake.api.dm_channel(REQUESTER)
    kinds = [e.kind for e in await store.audit_events(run_id=run.id)]
    assert kinds[0] == "run.started"
    assert "checkpoint.opened" in kinds
    assert kinds[-1] == "run.succeeded"
    decided = next(e for e in await store.audit_events(run_id=run.id) if e.kind == "decision.recorded")
    assert (decided.actor, decided.channel, decided.payload["action"]) == (MANAGER, "slack", "edit")


async def _final(env: SlackEnv, run_id: str) -> Any:
    run = await env.container.store.get_run(run_id)
    return run if run.status.final else None


def _told(env: SlackEnv, text: str) -> Call | None:
    return next((c for c in env.fake.calls_to("chat.postMessage") if text in str(c.params.get("text"))), None)
