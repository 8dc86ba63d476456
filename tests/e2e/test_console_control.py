"""Pause and resume from the run page (issue 14): forms behind the console's CSRF guard, as the
current actor; a paused run takes a decision and waits for Resume."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Settings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.egress import EgressPolicy
from engine.model import RunStatus
from tests.e2e._console import act_as, decide, payload, submit
from tests.fakes.origin import Origin

SHIP = """\
id: ship
title: Ship an order
nodes:
  - id: check
    type: human
    prompt: Ship the order?
    assignee: user:bob
    options: [approve, reject]
  - id: send
    type: set
    data: {sent: true}
edges:
  - {from: check, to: send, when: "response.action == 'approve'"}
"""

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "ship.yml").write_text(SHIP, encoding="utf-8")
    return folder


@pytest.fixture
async def client(container: Container) -> AsyncIterator[Client]:
    app = web.Application()
    add_routes(app, container)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _wait_for(container: Container, run_id: str, *statuses: RunStatus) -> None:
    for _ in range(400):
        if (await container.store.get_run(run_id)).status in statuses:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} never reached {statuses}")


async def test_pause_and_resume_buttons(client: Client, container: Container) -> None:
    await act_as(client, "rita")
    resp = await submit(client, "/workflows/ship", "/workflows/ship/runs", {})
    assert resp.status == 303, await resp.text()
    match = re.fullmatch(r"/runs/(run_\w+)", resp.headers["Location"])
    assert match
    run_id = match.group(1)
    await _wait_for(container, run_id, RunStatus.waiting)
    page = f"/runs/{run_id}"
    assert "Pause run" in await (await client.get(page)).text()

    # without the page's CSRF token the POST is refused and nothing changes
    forged = await client.post(f"{page}/pause", data={}, allow_redirects=False)
    assert forged.status == 403
    assert (await container.store.get_run(run_id)).paused_at is None

    await act_as(client, "mallory")
    refused = await submit(client, page, f"{page}/pause")
    assert refused.status == 403
    assert "can pause it" in await refused.text()

    await act_as(client, "rita")
    form = await payload(client, page, f"{page}/pause")
    resp = await client.post(f"{page}/pause", data=form, allow_redirects=False)
    assert resp.status == 303
    shown = await (await client.get(page)).text()
    assert "Paused by rita" in shown
    assert "Resume run" in shown
    again = await client.post(f"{page}/pause", data=form, allow_redirects=False)
    assert again.status == 409
    assert "is paused by rita" in await again.text()

    await act_as(client, "bob")
    (cp,) = await container.store.list_checkpoints(run_id=run_id)
    decided = await decide(client, cp.id, action="approve")
    assert decided.status == 303, await decided.text()
    held = await container.store.get_run(run_id)
    assert held.pending == ["send"]
    assert not held.status.final

    await act_as(client, "rita")
    resp = await submit(client, page, f"{page}/resume")
    assert resp.status == 303
    await _wait_for(container, run_id, RunStatus.succeeded)
    final = await (await client.get(page)).text()
    assert "Paused by" not in final
    assert "run.paused" in final
    assert "run.resumed" in final


async def test_rerun_button_links_both_runs_and_asks_nobody_again(
    client: Client, container: Container
) -> None:
    await act_as(client, "rita")
    resp = await submit(client, "/workflows/ship", "/workflows/ship/runs", {})
    run_id = resp.headers["Location"].rsplit("/", 1)[-1]
    await _wait_for(container, run_id, RunStatus.waiting)
    page = f"/runs/{run_id}"
    assert f'action="{page}/rerun"' not in await (await client.get(page)).text(), "only ended runs rerun"
    await act_as(client, "bob")
    (cp,) = await container.store.list_checkpoints(run_id=run_id)
    await decide(client, cp.id, action="approve")
    await _wait_for(container, run_id, RunStatus.succeeded)

    forged = await client.post(f"{page}/rerun", data={"from": "send"}, allow_redirects=False)
    assert forged.status == 403
    await act_as(client, "rita")
    bad = await submit(client, page, f"{page}/rerun", {"from": "nope"})
    assert bad.status == 400
    assert "node &#39;nope&#39; is not in workflow &#39;ship&#39;" in await bad.text()

    # the run succeeded: bob's approval was carried out once, and a rerun may not carry it out again
    replay = await submit(client, page, f"{page}/rerun", {"from": "send"})
    assert replay.status == 409
    assert "reusing it would carry it out again" in await replay.text()
    assert [r.id for r in await container.store.list_runs(workflow_id="ship")] == [run_id]

    resp = await submit(client, page, f"{page}/rerun", {"from": "send", "reask": "on"})
    assert resp.status == 303
    new_id = resp.headers["Location"].rsplit("/", 1)[-1]
    assert new_id != run_id
    await _wait_for(container, new_id, RunStatus.waiting)
    (asked,) = await container.store.list_checkpoints(run_id=new_id)
    assert asked.assignees == cp.assignees, "asked again"
    new_page = await (await client.get(f"/runs/{new_id}")).text()
    assert f'Rerun of</th><td><a href="/runs/{run_id}">' in new_page
    old_page = await (await client.get(page)).text()
    assert f'<a href="/runs/{new_id}"><code>{new_id}</code></a>' in old_page
    assert "run.rerun" in old_page


CHARGE = """\
id: charge
title: Charge a card
nodes:
  - id: check
    type: human
    prompt: Charge 42 USD?
    assignee: user:bob
    options: [approve, reject]
  - id: charge
    type: http
    request: {{method: POST, url: "{url}", json: {{amount: 42}}}}
edges:
  - {{from: check, to: charge, when: "response.action == 'approve'"}}
"""


async def test_retry_failed_step_in_place_keeps_the_idempotency_key(tmp_path: Path) -> None:
    async with Origin() as billing:
        billing.reply("/charges", "busy", status=503)
        folder = tmp_path / "wf"
        folder.mkdir()
        (folder / "charge.yml").write_text(CHARGE.format(url=billing.url("/charges")), encoding="utf-8")
        settings = Settings(
            database_url=f"sqlite:///{tmp_path}/c.db",
            workflows_dir=folder,
            skills_dir=tmp_path / "none",
            roles_file=tmp_path / "roles.yml",
            workspace_dir=tmp_path / "workspaces",
            secret_key_file=tmp_path / "secret_key",
            http_allow=EgressPolicy.parse("127.0.0.1"),
        )
        container = await build(settings, with_sandbox=False)
        app = web.Application()
        add_routes(app, container)
        try:
            async with TestClient(TestServer(app)) as client:
                await act_as(client, "rita")
                resp = await submit(client, "/workflows/charge", "/workflows/charge/runs", {})
                run_id = resp.headers["Location"].rsplit("/", 1)[-1]
                await _wait_for(container, run_id, RunStatus.waiting)
                await act_as(client, "bob")
                (cp,) = await container.store.list_checkpoints(run_id=run_id)
                await decide(client, cp.id, action="approve")
                await _wait_for(container, run_id, RunStatus.failed)
                page = f"/runs/{run_id}"
                assert "Retry failed step" in await (await client.get(page)).text()

                billing.reply("/charges", '{"charged": true}')
                await act_as(client, "rita")
                resp = await submit(client, page, f"{page}/retry")
                assert resp.status == 303
                await _wait_for(container, run_id, RunStatus.succeeded)
                keys = [h.headers.get("Idempotency-Key") for h in billing.hits]
                assert len(keys) == 2
                assert keys[0] is not None
                assert keys[0] == keys[1], "the retry is the same request to the billing side"
                shown = await (await client.get(page)).text()
                assert "attempt 2" in shown
                assert "run.retried" in shown
                assert len(await container.store.list_checkpoints(run_id=run_id)) == 1
        finally:
            await container.close()
