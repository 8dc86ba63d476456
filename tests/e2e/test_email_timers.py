"""Reminders, escalations and watchers by email; a node's ``channels``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from pathlib import Path

import pytest

from engine.model import CheckpointStatus
from engine.timeouts import Timeouts
from tests.e2e._console import form_for, forms_of
from tests.e2e._login import Console, console, free_port, wait_for
from tests.e2e._mail import Smtp, links, mail_settings, parts, smtp_server, write_project
from tests.e2e.conftest import RecordingSender

URGENT = """\
id: urgent
title: Urgent change
inputs: {type: object, properties: {what: {type: string}}}
nodes:
  - id: ok
    type: human
    title: "Change {{ inputs.what }}"
    prompt: "Go ahead?"
    options: [approve, reject]
    assignee: ["email:ann@corp.example", "user:felix"]
    notify: ["email:watch@corp.example"]
    channels: [email]
    timeout: 2h
    reminders: [1h]
    escalation: {action: escalate, to: "email:boss@corp.example", timeout: 2h, final_action: auto_reject}
"""


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def site(tmp_path: Path, smtp: Smtp) -> AsyncIterator[Console]:
    write_project(tmp_path, URGENT, roles="{}\n")
    (tmp_path / "workflows" / "hot.yml").write_text(HOT, encoding="utf-8")
    port = free_port()
    async with console(mail_settings(tmp_path, port, smtp.port), port) as made:
        yield made


async def _drain(site: Console) -> None:
    assert site.container.outbox is not None
    await site.container.outbox.drain()


async def test_reminders_escalations_and_watchers_by_email(site: Console, smtp: Smtp) -> None:
    c = site.container
    run = await c.engine.start("urgent", {"what": "DNS"}, requester="email:req@corp.example")
    await c.engine.drive(run.id)
    await _drain(site)
    await wait_for(lambda: len(smtp.messages) == 2)
    [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    [first] = smtp.to("ann@corp.example")
    assert first["Subject"] == "Change DNS"
    # the watcher is told, without a link: only assignees decide
    [told] = smtp.to("watch@corp.example")
    assert links(told) == set()
    assert "its assignees decide it" in parts(told)["text/plain"]
    # felix has no address: the node's channels cannot reach him, so Slack does, and it is audited
    primary = getattr(c.outbox.sender if c.outbox else None, "primary", None)
    assert isinstance(primary, RecordingSender)
    assert [d.target for d in primary.sent if d.kind == "checkpoint"] == ["user:felix"]
    forced = [e for e in await c.store.audit_events(run_id=run.id) if e.kind == "delivery.channel_fallback"]
    assert [e.payload["target"] for e in forced] == ["user:felix"]

    timers = Timeouts(c.engine)
    assert await timers.send_reminder(cp.id, 0)
    await _drain(site)
    await wait_for(lambda: len(smtp.to("ann@corp.example")) == 2)
    reminder = smtp.to("ann@corp.example")[-1]
    assert reminder["Subject"] == "Reminder: Change DNS"
    assert len(links(reminder)) == 1
    [ann_path] = links(first)

    site.clock.advance(2 * 3600 + 1)
    await timers.fire_deadline(cp.id)
    await _drain(site)
    await wait_for(lambda: bool(smtp.to("boss@corp.example")))
    [escalated] = smtp.to("boss@corp.example")
    assert escalated["Subject"] == "Escalated: Change DNS"
    assert "escalated to you" in parts(escalated)["text/plain"]

    # ann is no longer an assignee: her link decides nothing, and says so
    browser = await site.browser()
    page = await browser.get(ann_path)
    form = form_for(await page.text(), ann_path)
    resp = await browser.post(ann_path, data={**form.hidden, "decision": "approve"})
    assert resp.status == 403
    assert "Nothing was decided" in await resp.text()
    assert (await c.store.get_checkpoint(cp.id)).status is CheckpointStatus.open

    [boss_path] = links(escalated)
    page = await browser.get(boss_path)
    form = form_for(await page.text(), boss_path)
    resp = await browser.post(boss_path, data={**form.hidden, "decision": "reject", "comment": "not now"})
    assert resp.status == 200, await resp.text()
    done = await c.store.get_checkpoint(cp.id)
    assert done.status is CheckpointStatus.resolved
    [decision] = await c.store.list_decisions(checkpoint_id=cp.id)
    assert (decision.actor, decision.action, decision.comment) == (
        "email:boss@corp.example",
        "reject",
        "not now",
    )
    # the requester is known by email only: how the run ended reaches them by mail
    await c.engine.drive(run.id)
    await _drain(site)
    await wait_for(lambda: len(smtp.to("req@corp.example")) == 2)
    decided, ended = smtp.to("req@corp.example")
    assert decided["Subject"] == "Change DNS: rejected by email:boss@corp.example"
    assert "not now" in parts(decided)["text/plain"]
    assert ended["Subject"].endswith("(urgent) rejected; outcome: declined")
    assert f"/runs/{run.id}" in parts(ended)["text/html"]


HOT = """\
id: hot
title: Hot fix
nodes:
  - id: ok
    type: human
    title: "Ship the hot fix"
    options: [approve, reject]
    assignee: "email:ann@corp.example"
    priority: urgent
    confirm: SHIP
"""
_CODE = re.compile(r"one-time code \(it is in this mail only, never in a link\): (\d{6})")


def _code(message: Message) -> str:
    found = _CODE.search(parts(message)["text/plain"])
    assert found is not None
    assert found.group(1) in parts(message)["text/html"]
    return found.group(1)


async def test_an_urgent_request_needs_the_one_time_code_of_the_mail(site: Console, smtp: Smtp) -> None:
    c = site.container
    run = await c.engine.start("hot", {}, requester="rita")
    await c.engine.drive(run.id)
    await _drain(site)
    await wait_for(lambda: bool(smtp.to("ann@corp.example")))
    [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    first = smtp.to("ann@corp.example")[0]
    code = _code(first)
    [path] = links(first)
    assert code not in path
    browser = await site.browser()

    async def press(link: str, typed: str | None) -> tuple[int, str]:
        page = await browser.get(link)
        form = form_for(await page.text(), link)
        data = {**form.hidden, "decision": "approve", **({"code": typed} if typed is not None else {})}
        resp = await browser.post(link, data=data)
        return resp.status, await resp.text()

    # no code: nothing is used, and the page says what it needs
    status, text = await press(path, None)
    assert (status, "Type the one-time code" in text) == (400, True)
    # a wrong code uses the link up and mails a new link and code
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    status, text = await press(path, wrong)
    assert (status, "not the one in the mail" in text) == (403, True)
    assert (await c.store.get_checkpoint(cp.id)).status is CheckpointStatus.open
    status, text = await press(path, code)
    assert (status, "already used" in text) == (400, True)
    refused = [e for e in await c.store.audit_events(run_id=run.id) if e.kind == "decision.code_refused"]
    assert len(refused) == 1
    await _drain(site)
    await wait_for(lambda: len(smtp.to("ann@corp.example")) == 2)
    second = smtp.to("ann@corp.example")[1]
    [new_path] = links(second)
    assert new_path != path
    # the right code, but the confirm word mistyped: nothing decided, the page posts to a fresh link
    page = await browser.get(new_path)
    form = form_for(await page.text(), new_path)
    data = {**form.hidden, "decision": "approve", "code": _code(second), "confirm": "SHIPP"}
    resp = await browser.post(new_path, data=data)
    assert resp.status == 400
    retry = [f for f in forms_of(await resp.text()) if f.action.startswith("/mail/decide/")]
    assert len(retry) == 1
    assert retry[0].action != new_path
    assert (await c.store.get_checkpoint(cp.id)).status is CheckpointStatus.open
    data = {**retry[0].hidden, "decision": "approve", "confirm": "SHIP"}
    resp = await browser.post(retry[0].action, data=data)
    assert resp.status == 200, await resp.text()
    assert (await c.store.get_checkpoint(cp.id)).status is CheckpointStatus.resolved
