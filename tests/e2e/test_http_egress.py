"""Issue 11, part 2 (SSRF from the ``http`` node), end to end: settings -> wiring -> a run on SQLite.

Every server is on 127.0.0.1: the "metadata" server stands for what a workflow must never reach
(it answers fake credentials); ``front`` stands for an internal service a deployment lists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import ConfigError, Settings
from bot.wiring import Container, build
from engine.errors import NotFound
from engine.model import RunStatus
from tests.fakes.origin import Origin

SECRET = "FAKE-SECRET-AKIA"

WORKFLOW = """\
id: fetch
inputs:
  type: object
  properties: {{url: {{type: string}}, path: {{type: string}}}}
nodes:
  - id: call
    type: http
    request: {{method: GET, url: "{url}"}}
"""


@pytest.fixture
async def meta() -> AsyncIterator[Origin]:
    async with Origin() as origin:
        origin.reply("/latest/credentials", f'{{"AccessKeyId": "{SECRET}"}}')
        yield origin


@pytest.fixture
async def front() -> AsyncIterator[Origin]:
    async with Origin() as origin:
        yield origin


async def _container(tmp_path: Path, url: str, allow: str | None = None) -> Container:
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / "fetch.yml").write_text(WORKFLOW.format(url=url))
    env = {
        "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path}/s.db",
        "SIGNOFF_WORKFLOWS_DIR": str(folder),
        "SIGNOFF_SKILLS_DIR": str(tmp_path / "none"),
        "SIGNOFF_ROLES_FILE": str(tmp_path / "roles.yml"),
        "SIGNOFF_WORKSPACE_DIR": str(tmp_path / "workspaces"),
    }
    if allow is not None:
        env["SIGNOFF_HTTP_ALLOW"] = allow
    return await build(Settings.from_env(env), with_sandbox=False)


async def _run(c: Container, inputs: dict[str, Any] | None = None) -> tuple[RunStatus, str, str]:
    """Status, failure reason, and everything the run stored (outputs, inputs, errors)."""
    run = await c.engine.start("fetch", inputs or {}, requester="alice")
    await c.engine.drive(run.id)
    run = await c.store.get_run(run.id)
    steps = await c.store.list_steps(run.id)
    stored = " ".join(s.model_dump_json() for s in steps) + run.model_dump_json()
    return run.status, run.reason or "", stored


async def test_loopback_is_refused_by_default(tmp_path: Path, meta: Origin) -> None:
    c = await _container(tmp_path, meta.url("/latest/credentials"))
    try:
        status, reason, stored = await _run(c)
    finally:
        await c.close()
    assert status is RunStatus.failed
    assert "127.0.0.1 is a loopback address (to allow it, list it in SIGNOFF_HTTP_ALLOW)" in reason
    assert SECRET not in stored
    assert meta.hits == []


async def test_a_listed_service_is_reached(tmp_path: Path, meta: Origin) -> None:
    c = await _container(tmp_path, meta.url("/latest/credentials"), allow=f"127.0.0.1:{meta.port}")
    try:
        status, _, stored = await _run(c)
    finally:
        await c.close()
    assert status is RunStatus.succeeded
    assert SECRET in stored
    assert len(meta.hits) == 1


async def test_a_redirect_from_a_listed_service_to_metadata_is_refused(
    tmp_path: Path, meta: Origin, front: Origin
) -> None:
    front.redirect("/start", meta.url("/latest/credentials"), body="REDIRECT-BODY: see the metadata server")
    c = await _container(tmp_path, front.url("/start"), allow=f"127.0.0.1:{front.port}")
    try:
        status, reason, stored = await _run(c)
    finally:
        await c.close()
    assert status is RunStatus.failed
    assert f"was redirected to 127.0.0.1:{meta.port}" in reason
    assert "127.0.0.1 is a loopback address" in reason
    assert "REDIRECT-BODY" not in stored
    assert SECRET not in stored
    assert [h.path for h in front.hits] == ["/start"]
    assert meta.hits == []


async def test_a_url_taken_from_the_runs_data_is_refused_at_load_time(
    tmp_path: Path, meta: Origin, front: Origin
) -> None:
    front.redirect("/start", meta.url("/latest/credentials"))
    c = await _container(tmp_path, "{{ inputs.url }}", allow=f"127.0.0.1:{front.port}")
    try:
        [problem] = c.catalog.errors
        with pytest.raises(NotFound):
            await _run(c, {"url": front.url("/start")})
    finally:
        await c.close()
    [issue] = problem.issues
    assert (Path(issue.file).name, issue.line, issue.node, issue.field) == (
        "fetch.yml",
        8,
        "call",
        "request.url",
    )
    assert "scheme, host or port comes from a template" in issue.message
    assert front.hits == []
    assert meta.hits == []


async def test_an_at_sign_in_a_templated_path_cannot_move_the_host(tmp_path: Path, meta: Origin) -> None:
    c = await _container(tmp_path, "http://api.example.com{{ inputs.path }}")
    try:
        [problem] = c.catalog.errors
        with pytest.raises(NotFound):
            await _run(c, {"path": f"@127.0.0.1:{meta.port}/latest/credentials"})
    finally:
        await c.close()
    assert "scheme, host or port comes from a template" in str(problem)
    assert meta.hits == []


async def test_runs_do_not_share_cookies(tmp_path: Path, front: Origin) -> None:
    front.reply("/whoami", "hello", headers={"Set-Cookie": "session=run-one; Path=/"})
    c = await _container(tmp_path, front.url("/whoami", host="localhost"), allow="localhost")
    try:
        first, _, _ = await _run(c)
        second, _, _ = await _run(c)
    finally:
        await c.close()
    assert (first, second) == (RunStatus.succeeded, RunStatus.succeeded)
    assert [h.headers.get("Cookie") for h in front.hits] == [None, None]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("http://billing.internal", "not a URL"),
        ("10.0.0.1/8", "has host bits set"),
        ("billing.internal:http", "port must be a number"),
    ],
)
def test_a_bad_allow_list_stops_start_up_naming_the_variable(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SIGNOFF_HTTP_ALLOW": f"ok.internal, {value}"})
    assert str(caught.value).startswith(f"SIGNOFF_HTTP_ALLOW: '{value}'")
    assert says in str(caught.value)


@pytest.mark.parametrize("command", [["validate"], ["skills", "test", "refund-policy"], ["runs"]])
def test_the_cli_reports_a_bad_allow_list_without_a_traceback(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_HTTP_ALLOW", "http://billing.internal")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "SIGNOFF_HTTP_ALLOW: 'http://billing.internal'" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
