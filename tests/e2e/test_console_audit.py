"""The console's audit pages: one run's trail and the searchable, paged trail, masked and purge-aware."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.web import add_routes
from bot.wiring import Container
from engine.commands import Decide
from engine.retention import purge
from engine.sensitive import MASK

CARD = """\
id: card
title: Card charge
inputs:
  type: object
  properties:
    card: {type: string, x-signoff-sensitive: true}
    note: {type: string}
  required: [card]
nodes:
  - id: check
    type: human
    title: Check the charge
    prompt: "Charge *{{ inputs.note }}* now? See <https://cards.example/help|the card rules>."
    context: {card: "{{ inputs.card }}", note: "{{ inputs.note }}"}
    assignee: user:alice
  - id: done
    type: set
    data: {ok: true}
edges:
  - {from: check, to: done, when: "response.action == 'approve'"}
"""

SECRET = "4111222233334444"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "card.yml").write_text(CARD, encoding="utf-8")
    return folder


@pytest.fixture
async def client(container: Container) -> AsyncIterator[Client]:
    app = web.Application()
    add_routes(app, container)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _paused(c: Container, note: str = "rush") -> tuple[str, str]:
    run = await c.engine.start("card", {"card": SECRET, "note": note}, requester="rita")
    await c.engine.drive(run.id)
    (cp,) = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    return run.id, cp.id


async def _approved(c: Container) -> str:
    run_id, cp_id = await _paused(c)
    comment = f"checked card {SECRET} by phone"
    await c.engine.decide(
        Decide(checkpoint_id=cp_id, action="approve", actor="alice", channel="web", comment=comment)
    )
    return run_id


async def _page(client: Client, path: str, status: int = 200) -> str:
    resp = await client.get(path)
    text = await resp.text()
    assert resp.status == status, text
    return text


def _rows(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="e(\d+)">', page)]


async def test_run_audit_page_masks_sensitive_values_in_every_event(
    client: Client, container: Container
) -> None:
    run_id = await _approved(container)
    page = await _page(client, f"/runs/{run_id}/audit")
    events = await container.store.audit_events(run_id=run_id)
    assert _rows(page) == [e.seq for e in events]  # every event of the run, oldest first
    for kind in ("run.started", "checkpoint.opened", "decision.recorded"):
        assert f"<code>{kind}</code>" in page
    assert any(SECRET in json.dumps(e.payload) for e in events)  # stored as given: the page masks it
    assert SECRET not in page
    assert MASK in page
    assert "checked card" in page  # the rest of the comment is shown
    assert events[-1].hash[:16] in page
    run_page = await _page(client, f"/runs/{run_id}")
    assert f'href="/runs/{run_id}/audit"' in run_page
    await _page(client, "/runs/run_nope/audit", status=404)


async def test_purged_values_are_shown_as_removed_with_their_digest(
    client: Client, container: Container
) -> None:
    run_id = await _approved(container)
    report = await purge(container.engine, older_than=timedelta(microseconds=1), actor="ops", channel="cli")
    assert report.run_ids == [run_id]
    page = await _page(client, f"/runs/{run_id}/audit")
    assert "removed by the retention policy, sha256" in page
    assert "checked card" not in page
    assert "__purged__" not in page
    trail = await _page(client, "/audit?kind=retention.")
    assert "<code>retention.purged</code>" in trail
    assert "ops" in trail


async def test_audit_list_searches_filters_and_pages(client: Client, container: Container) -> None:
    for _ in range(12):
        await _approved(container)
    other_run, _ = await _paused(container, note="later")
    everything = await container.store.audit_events()
    assert len(everything) > 50
    first = await _page(client, "/audit")
    assert _rows(first) == [e.seq for e in reversed(everything)][:50]
    assert SECRET not in first
    older = re.search(r'<a class="button" href="(/audit\?before=\d+)">Older</a>', first)
    assert older is not None
    second = await _page(client, older.group(1))
    assert _rows(second) == [e.seq for e in reversed(everything)][50:]
    assert "Newest" in second
    assert 'class="button" href="/audit?' not in second  # the last page
    decisions = await _page(client, "/audit?q=alice&kind=decision.")
    expected = [e.seq for e in reversed(everything) if e.actor == "alice" and e.kind.startswith("decision.")]
    assert _rows(decisions) == expected
    assert len(expected) == 12
    one_run = await _page(client, f"/audit?q={other_run}")
    assert _rows(one_run) == [e.seq for e in reversed(everything) if e.run_id == other_run]
    assert f'href="/runs/{other_run}/audit#e' in one_run
    assert "No event matches." in await _page(client, "/audit?q=nobody-at-all")
    assert "No event matches." in await _page(client, f"/audit?q={SECRET}")  # contents are not searched


async def test_bad_filters_are_explained_not_fatal(client: Client, container: Container) -> None:
    await _paused(container)
    page = await _page(client, "/audit?kind=bogus&before=abc")
    assert "unknown kind &#39;bogus&#39;" in page
    assert "&#39;before&#39; is an event number, not &#39;abc&#39;" in page
    assert _rows(page)  # the newest events are shown anyway
    for odd in ("\u00b2", "9" * 30, "-1"):
        assert "is an event number" in await _page(client, f"/audit?before={odd}")
    assert 'href="/audit">Audit</a>' in page
