"""A run's outcome, apart from its status, on every surface: ``signoff show --json`` and
``signoff runs``, the console's badges, the requester's run-finished notice and the HTTP API's
run and checkpoint views. A declined refund is not a green "succeeded"; a timeout-driven reject
says ``timed_out``."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from bot.api._views import checkpoint_out, decision_of, run_view
from bot.config import Settings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.commands import Decide
from engine.model import RunStatus
from engine.testing import FixedClock
from engine.timeouts import Timeouts
from tests.e2e._cli import invoke, local_cli

REPO = Path(__file__).resolve().parents[2]
TIMED = """\
id: timed
title: Timed approval
nodes:
  - id: gate
    type: human
    prompt: "Ship it?"
    assignee: user:mia
    timeout: 1h
    escalation: auto_reject
  - id: ship
    type: set
    data: {ok: true}
edges:
  - {from: gate, to: ship, when: "response.action == 'approve'"}
"""


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=url,
        workflows_dir=tmp_path / "workflows",
        skills_dir=tmp_path / "no-skills",
        roles_file=REPO / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The shipped refund example and a workflow whose timeout rejects."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    shutil.copy(REPO / "workflows" / "refund.yml", workflows / "refund.yml")
    (workflows / "timed.yml").write_text(TIMED, encoding="utf-8")
    return workflows


@pytest.fixture
def cli(database_url: str, tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    return local_cli(monkeypatch, tmp_path, database_url, workflows=folder, roles=REPO / "roles.yml")


def test_a_declined_refund_has_outcome_declined_in_show_and_runs(cli: CliRunner) -> None:
    small = json.loads(
        invoke(cli, "run", "refund", "-i", "customer=ACME", "-i", "amount=50", "--json").output
    )
    assert (small["status"], small["outcome"]) == ("succeeded", None)  # nobody was asked
    followed = invoke(cli, "run", "refund", "-i", "customer=ACME", "-i", "amount=20").output
    assert ": succeeded" in followed
    assert "outcome" not in followed
    run = json.loads(invoke(cli, "run", "refund", "-i", "customer=ACME", "-i", "amount=250", "--json").output)
    assert (run["status"], run["outcome"]) == ("waiting", None)
    [task] = json.loads(invoke(cli, "tasks", "--json").output)
    said = invoke(cli, "respond", task["id"], "reject", "--as", "manny", "--comment", "dup").output
    assert f"reject recorded; run {run['id']} is succeeded, outcome declined" in said

    shown = json.loads(invoke(cli, "show", run["id"], "--json").output)
    # the reject edge ran the "declined" notice: technically a success, but declined
    assert (shown["status"], shown["outcome"]) == ("succeeded", "declined")
    assert "(declined)" in invoke(cli, "show", run["id"]).output

    listed = {r["id"]: r for r in json.loads(invoke(cli, "runs", "--json").output)}
    assert (listed[run["id"]]["status"], listed[run["id"]]["outcome"]) == ("succeeded", "declined")
    assert listed[small["id"]]["outcome"] is None
    table = invoke(cli, "runs").output
    assert [line for line in table.splitlines() if "declined" in line], table


@pytest.fixture
async def timed(
    database_url: str, tmp_path: Path, folder: Path
) -> AsyncIterator[tuple[Container, FixedClock]]:
    clock = FixedClock()
    container = await build(_settings(database_url, tmp_path), clock=clock, with_sandbox=False)
    yield container, clock
    await container.close()


async def test_a_timeout_driven_reject_says_timed_out(timed: tuple[Container, FixedClock]) -> None:
    c, clock = timed
    run = await c.engine.start("timed", {}, requester="alice", origin={"channel": "test"})
    await c.engine.drive(run.id)
    [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    clock.advance(3601)
    assert await Timeouts(c.engine).fire_deadline(cp.id) != "not due"
    await c.engine.drive(run.id)
    ended = await c.store.get_run(run.id)
    assert ended.status is RunStatus.rejected

    view = await run_view(c.store, ended)
    assert (view.status, view.outcome) == ("rejected", "timed_out")
    resolved = await c.store.get_checkpoint(cp.id)
    checkpoint = checkpoint_out(resolved, await decision_of(c.store, resolved))
    assert checkpoint.outcome == "timed_out"
    assert checkpoint.decision is not None
    assert (checkpoint.decision.outcome, checkpoint.decision.resolved_by) == ("timed_out", "timeout")
    # the requester's run-finished notice (Slack thread reply or DM) says why
    notices = [d for d in await c.store.list_deliveries(run_id=run.id) if d.kind == "requester_notice"]
    assert notices[-1].payload["text"] == f"Run {run.id} (timed) rejected; outcome: timed out"


async def test_console_badges_show_the_outcome_not_a_green_success(
    database_url: str, tmp_path: Path, folder: Path
) -> None:
    c = await build(_settings(database_url, tmp_path), with_sandbox=False)
    try:
        run = await c.engine.start("refund", {"customer": "ACME", "amount": 250}, requester="alice")
        await c.engine.drive(run.id)
        [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
        await c.engine.decide(Decide(checkpoint_id=cp.id, action="reject", actor="manny"))
        assert (await c.store.get_run(run.id)).status is RunStatus.succeeded
        server = web.Application()
        add_routes(server, c)
        async with TestClient(TestServer(server)) as client:
            for path in (f"/runs/{run.id}", "/runs", "/", "/workflows/refund"):
                page = await (await client.get(path)).text()
                if path.startswith("/runs/"):  # the run's heading (its steps did succeed)
                    page = page.split("<h1>", 1)[1].split("</h1>", 1)[0]
                assert '<span class="badge s-declined" title="outcome">declined</span>' in page, path
                assert '<span class="status-text" title="status">succeeded</span>' in page, path
                assert '<span class="badge s-succeeded"' not in page, path
    finally:
        await c.close()
