"""The local web console, end to end: aiohttp server, real engine, SQLite store."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import bot.web
from bot.web import add_routes
from bot.wiring import Container
from engine.model import CheckpointStatus, RunStatus
from tests.e2e._console import act_as, decide, payload, submit

PAYOUT = """\
id: payout
title: Vendor payout
description: Pay a vendor once finance approves.
inputs:
  type: object
  properties:
    vendor: {type: string, title: Vendor, minLength: 1}
    amount: {type: number, title: Amount, minimum: 1, maximum: 10000}
    count: {type: integer, minimum: 1, maximum: 5, default: 1}
    note: {type: string, format: multiline}
    currency: {type: string, enum: [USD, EUR], default: USD}
    urgent: {type: boolean, title: Urgent}
    pay_on: {type: string, format: date}
    pay_at: {type: string, format: date-time}
    contact: {type: string, format: email}
    invoice_url: {type: string, format: uri}
    tags: {type: array, items: {type: string, enum: [travel, hardware, services]}}
  required: [vendor, amount]
nodes:
  - id: prepare
    type: set
    data: {memo: "Payout to {{ inputs.vendor }}"}
  - id: approval
    type: human
    title: Approve payout
    prompt: "Pay {{ inputs.amount }} {{ inputs.currency }} to {{ inputs.vendor }}?"
    context:
      vendor: "{{ inputs.vendor }}"
      memo: "{{ nodes.prepare.data.memo }}"
      amount: "{{ inputs.amount }}"
    response_schema:
      type: object
      properties:
        memo: {type: string, minLength: 1}
        amount: {type: number, minimum: 1}
      required: [memo, amount]
    assignee: user:alice
    timeout: 4h
    priority: high
  - id: tell
    type: notify
    to: requester
    text: "Paid {{ nodes.approval.data.amount }} to {{ inputs.vendor }}"
edges:
  - {from: prepare, to: approval}
  - {from: approval, to: tell, when: "response.action == 'approve' || response.action == 'edit'"}
"""

DUAL = """\
id: dual
title: Two approvers
nodes:
  - id: sign
    type: human
    prompt: Sign off the release
    assignee: [user:alice, user:bob]
    quorum: 2
  - id: done
    type: set
    data: {ok: true}
edges:
  - {from: sign, to: done, when: "response.action == 'approve'"}
"""

BROKEN = "id: broken\ntitle: Broken\nnodes:\n  - id: a\n    type: nope\n"


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    """The payout and dual-approval workflows, and one broken file."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "payout.yml").write_text(PAYOUT, encoding="utf-8")
    (folder / "dual.yml").write_text(DUAL, encoding="utf-8")
    (folder / "broken.yml").write_text(BROKEN, encoding="utf-8")
    return folder


@pytest.fixture
async def client(container: Container) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A test client on an app with only the console mounted."""
    app = web.Application()
    add_routes(app, container)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


Client = TestClient[web.Request, web.Application]


def field_html(page: str, name: str) -> str:
    """The markup of the form field whose input is called ``name``."""
    chunks = [c for c in page.split('<div class="field') if f'name="{name}"' in c]
    assert chunks, f"no field {name}"
    return chunks[0]


async def start(client: Client, **fields: str) -> str:
    """Start a payout as the current actor; returns the run id."""
    data = {"f:vendor": "ACME", "f:amount": "120", **{f"f:{k}": v for k, v in fields.items()}}
    resp = await submit(client, "/workflows/payout", "/workflows/payout/runs", data)
    assert resp.status == 303, await resp.text()
    match = re.fullmatch(r"/runs/(run_\w+)", resp.headers["Location"])
    assert match
    return match.group(1)


async def settle(container: Container, run_id: str, *statuses: RunStatus) -> RunStatus:
    """Wait until the background driver brought the run to one of ``statuses``."""
    run = await container.store.get_run(run_id)
    for _ in range(200):
        if run.status in statuses:
            return run.status
        await asyncio.sleep(0.02)
        run = await container.store.get_run(run_id)
    raise AssertionError(f"run {run_id} stayed {run.status}")


async def open_checkpoint(container: Container, run_id: str) -> str:
    await settle(container, run_id, RunStatus.waiting)
    cps = await container.store.list_checkpoints(run_id=run_id, open_only=True)
    assert len(cps) == 1
    return cps[0].id


def test_public_api() -> None:
    assert bot.web.__all__ == ["add_routes", "refuse_exposure"]


async def test_home_lists_workflows_broken_files_and_local_note(client: Client) -> None:
    page = await (await client.get("/")).text()
    assert "Vendor payout" in page
    assert 'href="/workflows/payout"' in page
    assert re.search(r"broken\.yml(:\d+)?: .*nope", page)
    assert "no login" in page
    assert 'value="local-user"' in page


async def test_start_form_renders_every_field_type(client: Client) -> None:
    page = await (await client.get("/workflows/payout")).text()
    assert re.search(r'name="f:vendor" type="text"', page)
    amount = field_html(page, "f:amount")
    assert 'type="number"' in amount
    assert 'min="1"' in amount
    assert 'max="10000"' in amount
    assert 'step="any"' in amount
    assert 'step="1"' in field_html(page, "f:count")
    assert 'value="1"' in field_html(page, "f:count")
    assert "<textarea" in field_html(page, "f:note")
    currency = field_html(page, "f:currency")
    assert "<select" in currency
    assert '<option value="USD" selected>' in currency
    assert 'type="checkbox"' in field_html(page, "f:urgent")
    assert 'type="date"' in field_html(page, "f:pay_on")
    assert 'type="datetime-local"' in field_html(page, "f:pay_at")
    assert 'type="email"' in field_html(page, "f:contact")
    assert 'type="url"' in field_html(page, "f:invoice_url")
    tags = field_html(page, "f:tags")
    assert "multiple" in tags
    assert '<option value="hardware"' in tags


async def test_invalid_start_is_refused_next_to_each_field(client: Client, container: Container) -> None:
    token = (await payload(client, "/workflows/payout", "/workflows/payout/runs"))["csrf"]
    data = [
        ("csrf", token),
        ("f:vendor", ""),
        ("f:amount", "lots"),
        ("f:count", "0"),
        ("f:contact", "not-an-email"),
        ("f:note", "keep\nthis"),
        ("f:tags", "travel"),
        ("f:tags", "services"),
        ("f:urgent", "true"),
    ]
    resp = await client.post("/workflows/payout/runs", data=data, allow_redirects=False)
    assert resp.status == 400
    page = await resp.text()
    assert "this field is required" in field_html(page, "f:vendor")
    assert 'value="lots"' in field_html(page, "f:amount")
    assert "enter a number" in field_html(page, "f:amount")
    assert "must be at least 1" in field_html(page, "f:count")
    assert "not a valid email address" in field_html(page, "f:contact")
    assert 'value="not-an-email"' in field_html(page, "f:contact")
    assert "keep\nthis</textarea>" in field_html(page, "f:note")
    tags = field_html(page, "f:tags")
    assert '<option value="travel" selected>' in tags
    assert '<option value="hardware" >' in tags
    assert "checked" in field_html(page, "f:urgent")
    assert await container.store.list_runs() == []


async def test_valid_start_redirects_and_pauses_at_the_checkpoint(
    client: Client, container: Container
) -> None:
    run_id = await start(client, count="2", tags="hardware", pay_at="2026-11-05T10:30")
    await open_checkpoint(container, run_id)
    run = await container.store.get_run(run_id)
    assert run.requester == "local-user"
    assert run.inputs["amount"] == 120
    assert run.inputs["count"] == 2
    assert run.inputs["tags"] == ["hardware"]
    assert run.inputs["pay_at"] == "2026-11-05T10:30:00Z"
    assert run.inputs["urgent"] is False
    assert "contact" not in run.inputs
    page = await (await client.get(f"/runs/{run_id}")).text()
    assert "waiting" in page
    assert "Approve payout" in page


async def test_checkpoint_page_shows_forms_and_deadline(client: Client, container: Container) -> None:
    cp_id = await open_checkpoint(container, await start(client))
    page = await (await client.get(f"/checkpoints/{cp_id}")).text()
    assert "Pay 120 USD to ACME?" in page
    assert 'name="action" value="approve"' in page
    assert 'name="action" value="reject"' in page
    assert 'name="action" value="edit"' in page
    assert 'value="Payout to ACME"' in field_html(page, "f:memo")
    assert 'value="120"' in field_html(page, "f:amount")
    assert "user:alice" in page
    assert re.search(r"\(in 3h 59m\)|\(in 4h 0m\)", page)


async def test_invalid_edit_keeps_the_checkpoint_open(client: Client, container: Container) -> None:
    cp_id = await open_checkpoint(container, await start(client))
    await act_as(client, "alice")
    resp = await decide(client, cp_id, action="edit", **{"f:memo": "Changed", "f:amount": "0"})
    assert resp.status == 400
    page = await resp.text()
    assert "must be at least 1" in field_html(page, "f:amount")
    assert 'value="Changed"' in field_html(page, "f:memo")
    resp = await decide(client, cp_id, action="edit", **{"f:memo": "", "f:amount": "x"})
    assert resp.status == 400
    page = await resp.text()
    assert "this field is required" in field_html(page, "f:memo")
    assert "enter a number" in field_html(page, "f:amount")
    assert 'value="x"' in field_html(page, "f:amount")
    resp = await decide(client, cp_id, action="edit", **{"f:memo": "", "f:amount": "-5"})
    page = await resp.text()
    assert "this field is required" in field_html(page, "f:memo")
    assert "must be at least 1" in field_html(page, "f:amount")
    assert (await container.store.get_checkpoint(cp_id)).status is CheckpointStatus.open


async def test_only_the_assignee_may_decide(client: Client, container: Container) -> None:
    cp_id = await open_checkpoint(container, await start(client))
    resp = await decide(client, cp_id, action="approve")
    assert resp.status == 403  # the requester is not an assignee here
    assert "only the assignees can decide this checkpoint (user:alice)" in await resp.text()
    await act_as(client, "bob")
    resp = await decide(client, cp_id, action="approve")
    assert resp.status == 403
    assert "only the assignees can decide this checkpoint (user:alice)" in await resp.text()
    assert (await container.store.get_checkpoint(cp_id)).status is CheckpointStatus.open


async def test_approve_finishes_the_run_and_a_second_approve_conflicts(
    client: Client, container: Container
) -> None:
    run_id = await start(client)
    cp_id = await open_checkpoint(container, run_id)
    await act_as(client, "alice")
    target = f"/checkpoints/{cp_id}/decide"
    form = await payload(client, f"/checkpoints/{cp_id}", target, "approve")
    resp = await client.post(target, data={**form, "comment": "fine by me"}, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == f"/runs/{run_id}"
    assert await settle(container, run_id, RunStatus.succeeded) is RunStatus.succeeded
    # the same page, submitted again (a double click, or a second tab)
    resp = await client.post(target, data=form, allow_redirects=False)
    assert resp.status == 409
    page = await resp.text()
    assert "already approved by alice at" in page
    assert 'value="approve"' not in page
    assert "fine by me" in page


async def test_quorum_progress_is_shown(client: Client, container: Container) -> None:
    resp = await submit(client, "/workflows/dual", "/workflows/dual/runs")
    run_id = resp.headers["Location"].rsplit("/", 1)[1]
    cp_id = await open_checkpoint(container, run_id)
    await act_as(client, "alice")
    assert (await decide(client, cp_id, action="approve")).status == 303
    page = await (await client.get(f"/checkpoints/{cp_id}")).text()
    assert "1 of 2 approvals" in page
    assert "checkpoint.vote" in page
    resp = await decide(client, cp_id, action="approve")
    assert resp.status == 403
    assert "you already approved" in await resp.text()
    await act_as(client, "bob")
    assert (await decide(client, cp_id, action="approve")).status == 303
    assert await settle(container, run_id, RunStatus.succeeded) is RunStatus.succeeded


async def test_run_page_lists_steps_timings_and_the_edit(client: Client, container: Container) -> None:
    run_id = await start(client)
    cp_id = await open_checkpoint(container, run_id)
    await act_as(client, "alice")
    resp = await decide(client, cp_id, action="edit", **{"f:memo": "Payout, net 30", "f:amount": "110"})
    assert resp.status == 303
    await settle(container, run_id, RunStatus.succeeded)
    page = await (await client.get(f"/runs/{run_id}")).text()
    for node in ("prepare", "approval", "tell"):
        assert f"<strong>{node}</strong>" in page
    assert re.search(r"\d+ ms|\d+\.\d s", page)
    assert "by <strong>alice</strong>" in page
    assert "via web" in page
    assert "Payout, net 30" in page
    assert "Payout to ACME" in page
    assert "checkpoint.opened" in page
    assert "decision.recorded" in page
    assert "Cancel run" not in page


async def test_cancel_only_by_the_requester(client: Client, container: Container) -> None:
    run_id = await start(client)
    await open_checkpoint(container, run_id)
    await act_as(client, "mallory")
    cancel = f"/runs/{run_id}/cancel"
    resp = await submit(client, f"/runs/{run_id}", cancel)
    assert resp.status == 403
    assert "only the person who started this run" in await resp.text()
    assert (await container.store.get_run(run_id)).status is RunStatus.waiting
    await act_as(client, "local-user")
    form = await payload(client, f"/runs/{run_id}", cancel)
    resp = await client.post(cancel, data=form, allow_redirects=False)
    assert resp.status == 303
    assert (await container.store.get_run(run_id)).status is RunStatus.cancelled
    resp = await client.post(cancel, data=form, allow_redirects=False)
    assert resp.status == 409


async def test_context_values_are_escaped(client: Client, container: Container) -> None:
    run_id = await start(client, vendor="<script>alert(1)</script>")
    cp_id = await open_checkpoint(container, run_id)
    for path in (f"/checkpoints/{cp_id}", f"/runs/{run_id}", "/"):
        page = await (await client.get(path)).text()
        assert "<script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_runs_filter_by_status(client: Client, container: Container) -> None:
    run_id = await start(client)
    await open_checkpoint(container, run_id)
    assert run_id in await (await client.get("/runs?status=waiting")).text()
    assert run_id not in await (await client.get("/runs?status=succeeded")).text()
    page = await (await client.get("/runs?status=bogus")).text()
    assert "unknown status" in page
    assert run_id in page


async def test_errors_are_pages_not_tracebacks(
    client: Client, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in ("/runs/run_nope", "/checkpoints/cp_nope", "/workflows/payot"):
        resp = await client.get(path)
        assert resp.status == 404, path
    assert "did you mean payout" in await (await client.get("/workflows/payot")).text()

    async def boom(run_id: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(container.store, "get_run", boom)
    resp = await client.get("/runs/run_x")
    assert resp.status == 500
    body = await resp.text()
    assert "secret internals" not in body
    assert "Traceback" not in body
    assert re.search(r"error id err_\w+", body)


async def test_actor_names_and_cross_site_posts_are_checked(client: Client) -> None:
    resp = await submit(client, "/", "/actor", {"actor": "<b>x</b>", "next": "/"})
    assert resp.status == 400
    resp = await submit(client, "/", "/actor", {"actor": "alice", "next": "//evil.example"})
    assert resp.headers["Location"] == "/"
    resp = await submit(
        client,
        "/workflows/payout",
        "/workflows/payout/runs",
        {"f:vendor": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert resp.status == 403


async def test_stats_page(client: Client, container: Container) -> None:
    run_id = await start(client)
    cp_id = await open_checkpoint(container, run_id)
    await act_as(client, "alice")
    assert (await decide(client, cp_id, action="approve")).status == 303
    page = await (await client.get("/stats?since=30d")).text()
    assert "Checkpoint analytics" in page
    assert "payout" in page
    assert "<td>alice</td>" in page
    assert "100%" in page
    empty = await (await client.get("/stats?workflow=dual")).text()
    assert "No checkpoints in this period." in empty
    bad = await (await client.get("/stats?since=soon")).text()
    assert "bad duration" in bad
