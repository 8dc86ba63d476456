"""The console's charts: the JSON of ``/stats/charts/{chart}`` for runs made through the engine,
with a language model on a local fake of the Messages API, on SQLite, on a fixed clock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Settings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.commands import Decide
from engine.model import RunStatus
from engine.testing import FixedClock
from tests.e2e.conftest import RecordingSender
from tests.fakes.anthropic import FakeAnthropic

DRAFTS = """\
id: drafts
title: Drafts
nodes:
  - id: draft
    type: llm
    model: claude-sonnet-4-6
    prompt: "Draft a note."
  - id: polish
    type: llm
    model: claude-opus-4-6
    prompt: "Polish {{ nodes.draft.text }}"
  - id: review
    type: human
    prompt: "Send *this* note?"
    assignee: user:alice
  - id: done
    type: set
    data: {ok: true}
edges:
  - {from: draft, to: polish}
  - {from: polish, to: review}
  - {from: review, to: done, when: "response.action == 'approve'"}
"""

WIRE = """\
id: wire
title: Wire money
nodes:
  - id: sign
    type: human
    prompt: "Two of ann, ben and cy sign the wire"
    assignee: [user:ann, user:ben, user:cy]
    quorum: 2
    options: [approve, reject, edit]
    response_schema:
      type: object
      properties: {amount: {type: number, minimum: 1}}
      required: [amount]
    proposed: {amount: 100}
  - id: pay
    type: set
    data: {ok: true}
edges:
  - {from: sign, to: pay, when: "response.action == 'approve'"}
"""

WHERE = """\
id: where
title: Ship to
nodes:
  - id: ask
    type: human
    kind: input
    prompt: "Where should we ship it?"
    assignee: user:ann
    response_schema: {type: object, properties: {street: {type: string}}, required: [street]}
"""

Client = TestClient[web.Request, web.Application]
# sonnet: 3 USD in, 15 USD out per million tokens; opus: 5 and 25
SONNET = (1000 * 3 + 100 * 15) / 1_000_000
OPUS = (1000 * 5 + 100 * 25) / 1_000_000


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    """A local Messages API."""
    async with FakeAnthropic(api_key="sk-test") as server:
        yield server


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def container(tmp_path: Path, fake: FakeAnthropic, clock: FixedClock) -> AsyncIterator[Container]:
    """A process with the drafts workflow, the fake model and the fixed clock."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name, text in {"drafts": DRAFTS, "wire": WIRE, "where": WHERE}.items():
        (folder / f"{name}.yml").write_text(text, encoding="utf-8")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/s.db",
        workflows_dir=folder,
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
        anthropic_api_key="sk-test",
        anthropic_base_url=fake.base_url,
    )
    built = await build(settings, sender=RecordingSender(), clock=clock, with_sandbox=False)
    assert not built.catalog.errors, [str(e) for e in built.catalog.errors]
    yield built
    await built.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[Client]:
    app = web.Application()
    add_routes(app, container)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _decided_run(c: Container, fake: FakeAnthropic, clock: FixedClock, action: str, wait: float) -> str:
    fake.reply_text("a draft", input_tokens=1000, output_tokens=100)
    fake.reply_text("a polished draft", input_tokens=1000, output_tokens=100)
    run = await c.engine.start("drafts", {}, requester="rita")
    await c.engine.drive(run.id)
    (cp,) = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    clock.advance(wait)
    await c.engine.decide(Decide(checkpoint_id=cp.id, action=action, actor="alice", channel="web"))
    assert (await c.store.get_run(run.id)).status in (RunStatus.succeeded, RunStatus.rejected)
    return run.id


@pytest.fixture
async def runs(container: Container, fake: FakeAnthropic, clock: FixedClock) -> list[str]:
    """Three runs: approved after 60 s, approved after 120 s, rejected after 600 s."""
    return [
        await _decided_run(container, fake, clock, "approve", 60),
        await _decided_run(container, fake, clock, "approve", 120),
        await _decided_run(container, fake, clock, "reject", 600),
    ]


async def _chart(client: Client, path: str) -> dict[str, Any]:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    return body


def _last(chart: dict[str, Any], name: str) -> Any:
    """The value of the series ``name`` in the newest bucket (where every run of these tests is)."""
    return next(s["values"][-1] for s in chart["series"] if s["name"] == name)


@pytest.mark.usefixtures("runs")
async def test_time_to_decision_and_run_latency(client: Client) -> None:
    decisions = await _chart(client, "/stats/charts/decisions?since=1d")
    assert decisions["bucket"] == "hour"
    assert decisions["unit"] == "seconds"
    assert len(decisions["x"]) == 25
    assert [_last(decisions, f"drafts/review {p}") for p in ("p50", "p90", "p99")] == [120, 600, 600]
    latency = await _chart(client, "/stats/charts/latency?since=7d&workflow=drafts")
    assert latency["bucket"] == "day"
    assert [_last(latency, f"drafts {p}") for p in ("p50", "p90", "p99")] == [120, 600, 600]
    nodes = await _chart(client, "/stats/charts/latency?since=7d&by=node")
    assert {s["group"] for s in nodes["series"]} == {"drafts/draft", "drafts/polish", "drafts/done"}
    none = await _chart(client, "/stats/charts/latency?since=7d&workflow=other")
    assert none["series"] == []
    polish = await _chart(client, "/stats/charts/latency?since=7d&node=polish")  # by node, one node
    assert {s["group"] for s in polish["series"]} == {"drafts/polish"}
    assert (await _chart(client, "/stats/charts/decisions?since=7d&node=draft"))["series"] == []


@pytest.mark.usefixtures("runs")
async def test_cost_by_workflow_node_and_model(client: Client) -> None:
    by_workflow = await _chart(client, "/stats/charts/cost?since=7d")
    assert _last(by_workflow, "drafts cost_usd") == pytest.approx(3 * (SONNET + OPUS))
    assert _last(by_workflow, "drafts tokens") == 3 * 2 * 1100
    by_model = await _chart(client, "/stats/charts/cost?since=7d&by=model")
    assert _last(by_model, "claude-sonnet-4-6 cost_usd") == pytest.approx(3 * SONNET)
    assert _last(by_model, "claude-opus-4-6 cost_usd") == pytest.approx(3 * OPUS)
    by_node = await _chart(client, "/stats/charts/cost?since=7d&by=node")
    assert {s["group"] for s in by_node["series"]} == {"drafts/draft", "drafts/polish"}


@pytest.mark.usefixtures("runs")
async def test_decision_rates_with_the_advice_thresholds(client: Client) -> None:
    rates = await _chart(client, "/stats/charts/rates?since=7d")
    assert _last(rates, "approved") == pytest.approx(2 / 3, abs=1e-4)
    assert _last(rates, "rejected") == pytest.approx(1 / 3, abs=1e-4)
    assert _last(rates, "edited") == 0
    assert rates["thresholds"] == {"relax_above": 0.95, "edit_above": 0.3}
    assert rates["series"][0]["values"][0] is None  # days without decisions are gaps


async def _open(c: Container, workflow: str) -> str:
    run = await c.engine.start(workflow, {}, requester="rita")
    await c.engine.drive(run.id)
    (cp,) = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    return cp.id


async def test_rates_count_a_quorum_edit_as_edited_and_answers_to_input_nodes(
    client: Client, container: Container
) -> None:
    """ben edits the wire, ann and cy approve it: one edited checkpoint; ann answers an input node."""
    wire = await _open(container, "wire")
    for actor, action, data in (
        ("ben", "edit", {"amount": 90}),
        ("ann", "approve", {}),
        ("cy", "approve", {}),
    ):
        await container.engine.decide(
            Decide(checkpoint_id=wire, action=action, actor=actor, channel="web", data=data)
        )
    assert (await container.store.get_checkpoint(wire)).outcome is not None
    where = await _open(container, "where")
    await container.engine.decide(
        Decide(checkpoint_id=where, action="answer", actor="ann", channel="web", data={"street": "1 Main St"})
    )
    rates = await _chart(client, "/stats/charts/rates?since=1d")
    assert {s["name"]: s["values"][-1] for s in rates["series"]} == {
        "approved": 0,
        "edited": 0.5,
        "rejected": 0,
        "answered": 0.5,
        "timed_out": 0,
    }
    where_page = await (await client.get("/stats?since=1d&workflow=where")).text()
    assert "<th>Answer</th>" in where_page
    assert "<td>100%</td>" in where_page  # its one checkpoint was answered
    wire_only = await _chart(client, "/stats/charts/rates?since=1d&workflow=wire")
    assert _last(wire_only, "edited") == 1
    page = await (await client.get("/stats?since=1d&workflow=wire")).text()
    assert "<td>ben</td><td>1</td><td>0</td><td>0</td><td>1</td>" in page  # his edit, per approver


async def test_bad_parameters_are_named(client: Client) -> None:
    cases = {
        "/stats/charts/pie": (404, "unknown chart 'pie'"),
        "/stats/charts/latency?since=soon": (400, "since: bad duration"),
        "/stats/charts/latency?by=model": (400, "by: 'model' is not one of workflow, node"),
        "/stats/charts/cost?by=team": (400, "by: 'team' is not one of workflow, node, model"),
        "/stats/charts/rates?since=400d": (400, "a chart covers at most 366 days"),
        "/stats/charts/rates?since=99999999999d": (400, "since: bad duration"),
        "/stats/charts/rates?since=999999d": (400, "a chart covers at most 366 days"),
    }
    for path, (status, error) in cases.items():
        resp = await client.get(path)
        assert resp.status == status, path
        assert error in (await resp.json())["error"], path


async def test_the_page_loads_the_charts_from_the_package(client: Client) -> None:
    resp = await client.get("/stats?since=7d&workflow=drafts&cost_by=model")
    page = await resp.text()
    assert '<script src="/static/uPlot.iife.min.js" defer></script>' in page
    assert '<script src="/static/charts.js" defer></script>' in page
    assert "<script>" not in page  # nothing inline: the policy forbids it
    assert "script-src" not in resp.headers["Content-Security-Policy"]  # default-src 'self' applies
    assert "'unsafe-inline'" not in resp.headers["Content-Security-Policy"]
    for chart in ("rates", "decisions", "latency", "cost"):
        assert f'data-src="/stats/charts/{chart}?workflow=drafts&amp;since=7d' in page
    assert 'data-src="/stats/charts/cost?workflow=drafts&amp;since=7d&amp;by=model"' in page
    assert "approved above 95%" in page
    assert re.search(r'<option value="review"\s*>review</option>', page)  # the node filter
    one_node = await (await client.get("/stats?since=7d&node=review")).text()
    assert 'data-src="/stats/charts/rates?node=review&amp;since=7d"' in one_node
    for since in ("99999999999d", "999999d"):  # too long to count, or reaching before the year 1
        resp = await client.get(f"/stats?since={since}")
        assert resp.status == 200
        assert "bad duration" in await resp.text()
    unknown = await (await client.get("/stats?since=7d&node=nope")).text()
    assert "no node &#39;nope&#39; here: showing every node" in unknown
    assert 'data-src="/stats/charts/rates?since=7d"' in unknown
    assert "edited above 30%" in page
    for asset, kind in (
        ("uPlot.iife.min.js", "javascript"),
        ("charts.js", "javascript"),
        ("uPlot.min.css", "text/css"),
    ):
        served = await client.get(f"/static/{asset}")
        assert served.status == 200
        assert kind in served.content_type
    assert "uPlot" in await (await client.get("/static/uPlot.iife.min.js")).text()
