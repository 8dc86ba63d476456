"""Workflow graphs: ``signoff graph`` draws every shipped example in SVG, DOT and Mermaid, each
naming every node id and every edge condition; the console shows a workflow's graph and a
run's path on it (done, waiting, skipped greyed, edges taken).

What a graph must name is read from the YAML files themselves, not from the loader."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from bot.cli import app
from bot.config import Settings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.commands import Decide

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "workflows").rglob("*.yml"))
SVG = "{http://www.w3.org/2000/svg}"
MERMAID_CODES = {"#quot;": '"', "#124;": "|", "#lt;": "<", "#gt;": ">", "#35;": "#"}


def _expected(file: Path) -> tuple[str, list[str], list[str]]:
    """The workflow id, its node ids and its edge conditions, as the file writes them."""
    doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    nodes = [str(n["id"]) for n in doc["nodes"]]
    conditions = [str(e["when"]) for e in doc.get("edges", []) if e.get("when") is not None]
    return str(doc["id"]), nodes, conditions


def _node_conditions(file: Path) -> list[str]:
    """The conditions of human nodes themselves (``when`` on the node)."""
    doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    return [str(n["when"]) for n in doc["nodes"] if n.get("when") is not None]


def svg_texts(svg: str) -> tuple[set[str], dict[str, str]]:
    """Every text drawn in an SVG document, and each node's title -> its class."""
    root = ET.fromstring(svg)  # noqa: S314 (our own server's output)
    texts = {(t.text or "").strip() for t in root.iter(f"{SVG}text")}
    classes = {}
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        if "node" in group.get("class", "").split() and title is not None:
            classes[title.text or ""] = group.get("class", "")
    return texts, classes


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    monkeypatch.setenv("SIGNOFF_ROLES_FILE", str(REPO / "roles.yml"))
    monkeypatch.setenv("SIGNOFF_SKILLS_DIR", str(REPO / "skills" / "library"))
    monkeypatch.setenv("SIGNOFF_WORKSPACE_DIR", str(tmp_path / "workspaces"))
    # LLM nodes load when a model is configured; drawing a graph never calls it
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-unused")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    return CliRunner()


def _graph(cli: CliRunner, file: Path, fmt: str, *extra: str) -> str:
    workflow_id, _, _ = _expected(file)
    result = cli.invoke(
        app, ["graph", workflow_id, "--format", fmt, *extra], env={"SIGNOFF_WORKFLOWS_DIR": str(file.parent)}
    )
    assert result.exit_code == 0, (file, fmt, result.output)
    return result.output


def test_there_are_examples_with_conditions() -> None:
    assert len(EXAMPLES) >= 6
    assert sum(len(_expected(f)[2]) for f in EXAMPLES) >= 6
    assert any(_node_conditions(f) for f in EXAMPLES)


@pytest.mark.parametrize("file", EXAMPLES, ids=lambda f: f.stem)
def test_every_example_renders_naming_every_node_and_condition(cli: CliRunner, file: Path) -> None:
    _, nodes, conditions = _expected(file)

    texts, _ = svg_texts(_graph(cli, file, "svg"))
    for node in nodes:
        assert node in texts, (file.name, "svg", node)
    for condition in conditions:
        assert condition in texts, (file.name, "svg", condition)
    for condition in _node_conditions(file):
        assert f"when {condition}" in texts, (file.name, "svg", condition)

    dot = _graph(cli, file, "dot")
    assert dot.startswith("digraph ")
    labels = {
        m.replace('\\"', '"').replace("\\\\", "\\") for m in re.findall(r'label="((?:[^"\\]|\\.)*)"', dot)
    }
    for node in nodes:
        assert f'"{node}" [' in dot, (file.name, "dot", node)
    for condition in conditions:
        assert condition in labels, (file.name, "dot", condition)
    for condition in _node_conditions(file):
        assert any(label.endswith(f"\\nwhen {condition}") for label in labels), (file.name, "dot", condition)

    mermaid = _graph(cli, file, "mermaid")
    assert mermaid.startswith("flowchart TD\n")
    decoded = mermaid
    for code, char in MERMAID_CODES.items():
        decoded = decoded.replace(code, char)
    for node in nodes:
        assert f'"{node}<br/>' in decoded, (file.name, "mermaid", node)
    for condition in conditions:
        assert f'|"{condition}"|' in decoded, (file.name, "mermaid", condition)
    for condition in _node_conditions(file):
        assert f"<br/>when {condition}" in decoded, (file.name, "mermaid", condition)
    # no raw character that would end a label or open markup inside one
    for label in re.findall(r'\|"([^"]*)"\|', mermaid):
        assert not set(label) & {"|", "<", ">"}, label


def test_graph_refuses_unknown_workflows_formats_and_foreign_runs(cli: CliRunner) -> None:
    refund = REPO / "workflows" / "refund.yml"
    env = {"SIGNOFF_WORKFLOWS_DIR": str(refund.parent)}
    unknown = cli.invoke(app, ["graph", "refnud"], env=env)
    assert unknown.exit_code == 2
    assert "unknown workflow 'refnud'" in unknown.output
    bad = cli.invoke(app, ["graph", "refund", "--format", "png"], env=env)
    assert bad.exit_code == 2
    started = cli.invoke(app, ["run", "ship-order", "-i", "order_id=o-1", "--json"], env=env)
    assert started.exit_code == 0, started.output
    run_id = re.search(r'"id": "(run_\w+)"', started.output)
    assert run_id
    foreign = cli.invoke(app, ["graph", "refund", "--run", run_id.group(1)], env=env)
    assert foreign.exit_code == 2
    assert "is a run of 'ship-order', not of 'refund'" in foreign.output


def test_a_runs_path_is_overlaid(cli: CliRunner) -> None:
    refund = REPO / "workflows" / "refund.yml"
    env = {"SIGNOFF_WORKFLOWS_DIR": str(refund.parent)}
    started = cli.invoke(app, ["run", "refund", "-i", "customer=ACME", "-i", "amount=250", "--json"], env=env)
    assert started.exit_code == 0, started.output
    run_id = re.search(r'"id": "(run_\w+)"', started.output)
    assert run_id
    svg = _graph(cli, refund, "svg", "--run", run_id.group(1))
    _, classes = svg_texts(svg)
    assert classes["draft"] == "node state-done"
    assert classes["manager_approval"] == "node state-waiting"
    assert classes["send"] == "node state-pending"
    mermaid = _graph(cli, refund, "mermaid", "--run", run_id.group(1))
    assert "  classDef waiting " in mermaid
    assert re.search(r"^  class n1 waiting$", mermaid, re.MULTILINE)


# --------------------------------------------------------------------------- the console


@pytest.fixture
async def console(
    tmp_path: Path,
) -> AsyncIterator[tuple[Container, TestClient[web.Request, web.Application]]]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        workflows_dir=REPO / "workflows",
        skills_dir=tmp_path / "no-skills",
        roles_file=REPO / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
    )
    container = await build(settings, with_sandbox=False)
    server = web.Application()
    add_routes(server, container)
    async with TestClient(TestServer(server)) as client:
        yield container, client
    await container.close()


async def _svg(client: TestClient[web.Request, web.Application], path: str) -> Any:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "image/svg+xml"
    return svg_texts(await resp.text())


async def test_console_workflow_page_shows_the_graph(
    console: tuple[Container, TestClient[web.Request, web.Application]],
) -> None:
    _, client = console
    _, nodes, conditions = _expected(REPO / "workflows" / "refund.yml")
    page = await (await client.get("/workflows/refund")).text()
    assert '<img class="graph" id="graph" src="/workflows/refund/graph.svg"' in page
    for condition in conditions:  # the text list beside the picture, escaped as HTML
        assert f"<code>{condition}</code>" in html.unescape(page), condition
    texts, classes = await _svg(client, "/workflows/refund/graph.svg")
    assert set(nodes) <= texts
    assert set(conditions) <= texts
    assert set(classes.values()) == {"node"}  # no run: no states


async def test_console_run_page_overlays_the_path(
    console: tuple[Container, TestClient[web.Request, web.Application]],
) -> None:
    c, client = console
    run = await c.engine.start("refund", {"customer": "ACME", "amount": 250}, requester="alice")
    await c.engine.drive(run.id)
    page = await (await client.get(f"/runs/{run.id}")).text()
    assert f'src="/runs/{run.id}/graph.svg"' in page
    _, waiting = await _svg(client, f"/runs/{run.id}/graph.svg")
    assert (waiting["draft"], waiting["manager_approval"], waiting["tell"]) == (
        "node state-done",
        "node state-waiting",
        "node state-pending",
    )
    [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    await c.engine.decide(Decide(checkpoint_id=cp.id, action="reject", actor="manny"))
    resp = await client.get(f"/runs/{run.id}/graph.svg")
    root = ET.fromstring(await resp.text())  # noqa: S314
    _, done = svg_texts(await resp.text())
    assert done == {
        "draft": "node state-done",
        "manager_approval": "node state-done",
        "declined": "node state-done",
        "send": "node state-skipped",  # the branch not taken, greyed
        "tell": "node state-skipped",
    }
    edges = {
        (g.findtext(f"{SVG}title") or ""): g
        for g in root.iter(f"{SVG}g")
        if "edge" in g.get("class", "").split()
    }
    taken = edges["manager_approval->declined"].find(f"{SVG}path")
    skipped = edges["draft->send"].find(f"{SVG}path")
    assert taken is not None
    assert skipped is not None
    assert taken.get("stroke") == "#067647"
    assert skipped.get("stroke") == "#c0c5cf"
    assert skipped.get("stroke-dasharray")


def test_svg_without_graphviz_says_what_to_install(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = REPO / "workflows" / "refund.yml"
    env = {"SIGNOFF_WORKFLOWS_DIR": str(refund.parent)}
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no dot program here
    failed = cli.invoke(app, ["graph", "refund", "--format", "svg"], env=env)
    assert failed.exit_code == 1
    assert "needs Graphviz's dot program (apt-get install graphviz)" in failed.output
    mermaid = cli.invoke(app, ["graph", "refund", "--format", "mermaid"], env=env)
    assert mermaid.exit_code == 0, mermaid.output


async def test_console_without_graphviz_lists_the_graph_as_text(
    console: tuple[Container, TestClient[web.Request, web.Application]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, client = console
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot program here
    page = await (await client.get("/workflows/refund")).text()
    assert "this server has no Graphviz" in page
    assert 'class="graph"' not in page.replace('class="graph-text"', "")
    assert '<details class="graph-text" open>' in page
    image = await client.get("/workflows/refund/graph.svg")
    assert image.status == 503
    assert "apt-get install graphviz" in await image.text()
