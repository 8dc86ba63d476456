"""Reminders, escalations and watchers by email; a node's ``channels``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.model import CheckpointStatus
from engine.timeouts import Timeouts
from tests.e2e._console import form_for
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
    port = free_port()
    async with console(mail_settings(tmp_path, port, smtp.port), port) as made:
        yield made


async def _drain(site: Console) -> None:
    assert site.container.outbox is not None
    await site.container.outbox.drain()


async def test_reminders_escalations_and_watchers_by_email(site: Console, smtp: Smtp) -> None:
    c = site.container
    run = await c.engine.start("urgent", {"what": "DNS"}, requester="rita")
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
