"""Console pages as a person reads them: prompts formatted as in Slack (data stays text), one
duration format on every page, and markup that fits a 390 px wide screen."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Settings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.commands import Decide
from engine.testing import FixedClock
from tests.e2e.conftest import RecordingSender

# what engine.shown.escape_markup makes of data's * and | in Slack markup: look-alikes, not markers
STAR, BAR = "\uff0a", "\uff5c"

CHARGE = """\
id: charge
title: Charge
inputs:
  type: object
  properties:
    note: {type: string}
  required: [note]
nodes:
  - id: check
    type: human
    title: Check the charge
    prompt: >-
      Charge *{{ inputs.note }}* now?
      See <https://cards.example/help|the card rules> and run `signoff show`.
    context: {note: "{{ inputs.note }}"}
    assignee: user:alice
    timeout: 4h
  - id: done
    type: notify
    to: requester
    text: "Charged *{{ inputs.note }}*: see <https://cards.example/help|the rules>"
edges:
  - {from: check, to: done, when: "response.action == 'approve'"}
"""

STATIC = Path(__file__).resolve().parents[2] / "bot" / "web" / "static"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def container(tmp_path: Path, clock: FixedClock) -> AsyncIterator[Container]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "charge.yml").write_text(CHARGE, encoding="utf-8")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/s.db",
        workflows_dir=folder,
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
    )
    built = await build(settings, sender=RecordingSender(), clock=clock, with_sandbox=False)
    yield built
    await built.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[Client]:
    app = web.Application()
    add_routes(app, container)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _paused(c: Container, note: str) -> tuple[str, str]:
    run = await c.engine.start("charge", {"note": note}, requester="rita")
    await c.engine.drive(run.id)
    (cp,) = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    return run.id, cp.id


async def _page(client: Client, path: str) -> str:
    resp = await client.get(path)
    text = await resp.text()
    assert resp.status == 200, text
    return text


async def test_the_prompt_reads_as_in_slack_and_its_data_stays_text(
    client: Client, container: Container
) -> None:
    _, cp_id = await _paused(
        container, 'the *VIP* <script>alert(1)</script> <https://evil.example|Approve> "x"'
    )
    page = await _page(client, f"/checkpoints/{cp_id}")
    prompt = re.search(r'<p class="prompt">(.*?)</p>', page, re.DOTALL)
    assert prompt is not None
    html = prompt.group(1)
    assert html.startswith(
        f"Charge <strong>the {STAR}VIP{STAR} &lt;script&gt;alert(1)&lt;/script&gt; &lt;https://evil.example{BAR}Approve&gt;"
    )
    assert '<a href="https://cards.example/help" rel="noopener noreferrer">the card rules</a>' in html
    assert "<code>signoff show</code>" in html
    assert html.count("<a ") == 1  # the author's link only
    assert "<script>" not in page
    assert "*" not in html  # no literal markers left
    await _paused(container, "rush")
    home = await _page(client, "/")
    assert f"Charge the {STAR}VIP{STAR} &lt;script&gt;" in home  # one line, cut at 90 characters
    assert "Charge rush now? See the card rules and run signoff show." in home


async def test_one_duration_format_on_every_page(
    client: Client, container: Container, clock: FixedClock
) -> None:
    run_id, cp_id = await _paused(container, "rush")
    assert "in 4h 0m" in await _page(client, "/")
    clock.advance(125)
    assert "in 3h 57m" in await _page(client, f"/checkpoints/{cp_id}")
    await container.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="alice", channel="web"))
    run_page = await _page(client, f"/runs/{run_id}")
    assert "(took 2m 5s)" in run_page
    # a notify message is Slack markup too
    assert 'Charged <strong>rush</strong>: see <a href="https://cards.example/help"' in run_page
    assert "0 ms" in run_page  # the steps, on the fixed clock
    stats = await _page(client, "/stats")
    assert "<td>2m 5s</td><td>2m 5s</td>" in stats  # median and p90


async def test_pages_fit_a_narrow_screen(client: Client, container: Container) -> None:
    run_id, cp_id = await _paused(container, "x" * 300)
    css = (STATIC / "style.css").read_text(encoding="utf-8")
    narrow = css[css.index("@media (max-width: 600px)") :]
    for rule in (
        "table.list { display: block; overflow-x: auto; }",
        ".top nav { flex-wrap: wrap;",
        ".filter { flex-wrap: wrap; }",
        ".nowrap { white-space: normal; }",
        "table.audit, .audit tbody, .audit tr, .audit td { display: block; }",
    ):
        assert rule in narrow, rule
    for rule in (
        ".scroll { max-width: 100%; overflow-x: auto; }",
        "code { overflow-wrap: anywhere; }",
        "td, .pair { overflow-wrap: break-word; }",
    ):
        assert rule in css, rule
    for path in (
        "/",
        "/runs",
        "/stats",
        "/audit",
        f"/runs/{run_id}",
        f"/runs/{run_id}/audit",
        f"/checkpoints/{cp_id}",
    ):
        page = await _page(client, path)
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page, path
        assert not re.search(r"\b(width|min-width)=\"\d{3,}", page), path  # no fixed wide elements
