"""Where the login-less console may be served: local mode on loopback only, never next to Slack."""

from __future__ import annotations

import asyncio
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.config import ConfigError, Settings
from bot.server import create_app, serve
from bot.wiring import build
from tests.e2e._process import SIGNOFF, env_for, free_port, kill, start_server, wait_healthy

EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 (the setting under test, refused)


def _local(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'never.db'}",
        workflows_dir=tmp_path / "workflows",
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
        port=free_port(),
    ).model_copy(update=extra)


async def _serve_briefly(settings: Settings) -> None:
    """``serve`` told to stop at once: a refused configuration raises before it starts anything."""
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(serve(settings, stop=stop), timeout=60)


@pytest.mark.parametrize("host", [EVERY_ADDRESS, "", "192.168.1.20", "::", "signoff.example.com", "10.0.0.1"])
async def test_local_mode_refuses_a_non_loopback_address(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await _serve_briefly(_local(tmp_path, host=host))
    message = str(caught.value)
    assert message.startswith(f"SIGNOFF_HOST={host or '(empty: every address)'} is refused in local mode")
    assert "SIGNOFF_HOST=127.0.0.1" in message
    assert "\n" not in message
    assert not (tmp_path / "never.db").exists(), "refused before anything started"


async def test_slack_mode_refuses_the_console(tmp_path: Path) -> None:
    slack = {
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": "s" * 32,
        "slack_api_url": "http://127.0.0.1:9/",
        "web_console": True,
    }
    with pytest.raises(
        ConfigError, match=r"^SIGNOFF_WEB_CONSOLE=on is refused in Slack mode: the web console needs a login"
    ):
        await _serve_briefly(_local(tmp_path, **slack))
    assert not (tmp_path / "never.db").exists()


def test_loopback_addresses_are_accepted() -> None:
    from bot.web import refuse_exposure

    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        refuse_exposure(Settings(host=host))
    # Slack mode listens where Slack can reach it: it serves no console
    refuse_exposure(Settings(host=EVERY_ADDRESS, slack_bot_token="xoxb-test", slack_signing_secret="s"))


async def test_slack_mode_serves_no_console_pages(tmp_path: Path) -> None:
    settings = _local(
        tmp_path,
        slack_bot_token="xoxb-test",
        slack_signing_secret="s" * 32,
        slack_api_url="http://127.0.0.1:9/",
    )
    container = await build(settings, with_sandbox=False)
    try:
        async with TestClient(TestServer(await create_app(container))) as client:
            assert (await client.get("/healthz")).status == 200
            for path in ("/", "/runs", "/checkpoints/cp_1", "/static/style.css"):
                assert (await client.get(path)).status == 404, path
            for path in ("/actor", "/workflows/x/runs", "/checkpoints/cp_1/decide", "/runs/run_1/cancel"):
                assert (await client.post(path, data={})).status in {404, 405}, path
    finally:
        await container.close()
    assert not settings.secret_key_file.exists(), "no console, no console secret"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "roles.yml").write_text("", encoding="utf-8")
    return tmp_path


def _refused(workdir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = env_for(f"sqlite:///{workdir / 'x.db'}", workdir, free_port(), COLUMNS="60", **extra)
    return subprocess.run(
        [SIGNOFF, "serve"], env=env, cwd=workdir, capture_output=True, text=True, timeout=60, check=False
    )


def test_serve_on_every_address_stops_with_one_line(workdir: Path) -> None:
    result = _refused(workdir, SIGNOFF_HOST=EVERY_ADDRESS)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: SIGNOFF_HOST=0.0.0.0 is refused in local mode")
    assert "set SIGNOFF_HOST=127.0.0.1" in lines[0]
    assert not (workdir / "x.db").exists()


def test_serve_with_slack_and_the_console_stops_with_one_line(workdir: Path) -> None:
    result = _refused(
        workdir, SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET="s" * 32, SIGNOFF_WEB_CONSOLE="on"
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: SIGNOFF_WEB_CONSOLE=on is refused in Slack mode")
    assert "needs a login (SIGNOFF_AUTH)" in lines[0]


def test_a_served_console_refuses_a_foreign_host(workdir: Path) -> None:
    port = free_port()
    env = env_for(f"sqlite:///{workdir / 'ok.db'}", workdir, port)
    server = start_server(env, workdir)
    try:
        wait_healthy(port, server)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as ok:
            assert ok.status == 200
            assert "frame-ancestors 'none'" in ok.headers["Content-Security-Policy"]
        forged = urllib.request.Request(
            f"http://127.0.0.1:{port}/", headers={"Host": f"rebound.example:{port}"}
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(forged, timeout=10)  # noqa: S310 (a fixed http URL)
        assert caught.value.code == 400
        caught.value.close()
    finally:
        kill(server)
    assert (workdir / ".signoff" / "secret_key").stat().st_mode & 0o777 == 0o600
