"""The decision verifier in the web console and the CLI, with the real Anthropic client against
the local fake Messages API: ``ask_again`` shows the question and decides nothing; ``flag``
shows on the run page why a decision was flagged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.config import Settings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.model import CheckpointStatus, RunStatus
from tests.e2e._console import act_as, decide
from tests.e2e.conftest import RecordingSender
from tests.fakes.anthropic import FakeAnthropic

ASK = """\
id: {id}
title: Refund
nodes:
  - id: approval
    type: human
    title: Refund 500 USD
    prompt: "Refund 500 USD to ACME?"
    options: [approve, reject]
    assignee: user:mia
    verify: {{prompt: "A rejection needs an actionable reason.", on_fail: {on_fail}}}
  - {{id: done, type: set, data: {{ok: true}}}}
edges: [{{from: approval, to: done, when: "response.action == 'approve'"}}]
"""
QUESTION = "Which policy does this refund break?"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def llm() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, llm: FakeAnthropic) -> Settings:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "ask.yml").write_text(ASK.format(id="ask", on_fail="ask_again"), encoding="utf-8")
    (folder / "flag.yml").write_text(ASK.format(id="flag", on_fail="flag"), encoding="utf-8")
    return Settings(
        database_url=f"sqlite:///{tmp_path}/s.db",
        workflows_dir=folder,
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
        anthropic_api_key="sk-test",
        anthropic_base_url=llm.base_url,
    )


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    built = await build(settings, sender=RecordingSender(), with_sandbox=False)
    assert not built.catalog.errors, [str(e) for e in built.catalog.errors]
    yield built
    await built.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[Client]:
    app = web.Application()
    add_routes(app, container)
    async with TestClient(TestServer(app)) as test_client:
        await act_as(test_client, "mia")
        yield test_client


async def _waiting(container: Container, workflow: str) -> str:
    run = await container.engine.start(workflow, {}, requester="alice")
    await container.engine.drive(run.id)
    (cp,) = await container.store.list_checkpoints(run_id=run.id, open_only=True)
    return cp.id


async def test_web_console_shows_the_question_next_to_the_form(
    client: Client, container: Container, llm: FakeAnthropic
) -> None:
    llm.reply_tool({"ok": False, "reason": QUESTION})
    cp_id = await _waiting(container, "ask")
    resp = await decide(client, cp_id, action="reject", comment="nope")
    assert resp.status == 400
    page = await resp.text()
    reject_form = page.split('value="reject"')[1].split("</form>")[0]
    assert f"Before this counts:</strong> {QUESTION}" in reject_form
    assert ">nope</textarea>" in reject_form, "the answer is kept for the next try"
    assert (await container.store.get_checkpoint(cp_id)).status is CheckpointStatus.open

    llm.reply_tool({"ok": True, "reason": "fine"})
    resp = await decide(
        client, cp_id, action="reject", comment="Breaks policy R-7: no refunds after 90 days."
    )
    assert resp.status == 303
    assert (await container.store.get_checkpoint(cp_id)).status is CheckpointStatus.resolved


async def test_run_page_shows_a_flagged_decision(
    client: Client, container: Container, llm: FakeAnthropic
) -> None:
    llm.reply_tool({"ok": False, "reason": "Approved without a reason."})
    cp_id = await _waiting(container, "flag")
    resp = await decide(client, cp_id, action="approve")
    assert resp.status == 303
    run_id = resp.headers["Location"].rsplit("/", 1)[1]
    for _ in range(200):
        if [e for e in await container.store.audit_events(run_id=run_id) if e.kind == "decision.flagged"]:
            break
        await asyncio.sleep(0.02)
    page = await (await client.get(f"/runs/{run_id}")).text()
    assert "Flagged by the reviewer:</strong> Approved without a reason." in page
    checkpoint_page = await (await client.get(f"/checkpoints/{cp_id}")).text()
    assert "Flagged by the reviewer:</strong> Approved without a reason." in checkpoint_page


async def test_cli_respond_exits_2_with_the_question(
    container: Container, settings: Settings, llm: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp_id = await _waiting(container, "ask")
    llm.reply_tool({"ok": False, "reason": QUESTION})
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIGNOFF_WORKFLOWS_DIR", str(settings.workflows_dir))
    monkeypatch.setenv("SIGNOFF_SKILLS_DIR", str(settings.skills_dir))
    monkeypatch.setenv("SIGNOFF_ROLES_FILE", str(settings.roles_file))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llm.base_url)
    args = ["respond", cp_id, "reject", "--as", "mia", "--comment", "no"]
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, args)
    assert result.exit_code == 2, result.output
    assert QUESTION in " ".join(result.stderr.split())
    assert QUESTION not in result.stdout
    assert (await container.store.get_checkpoint(cp_id)).status is CheckpointStatus.open
    run = await container.store.get_run((await container.store.get_checkpoint(cp_id)).run_id)
    assert run.status is RunStatus.waiting
