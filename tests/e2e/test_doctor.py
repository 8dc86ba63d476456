"""``signoff doctor`` as a process against FakeSlack: every setting with its source, and each
problem it must find (unreachable database, old schema, missing scopes, manifest drift, no
sandbox), with exit 1; exit 0 when nothing is wrong."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot._limits_config import LIMIT_VARIABLES
from bot.config import Settings
from bot.doctor import variables
from bot.login_config import VARIABLES as LOGIN_VARIABLES
from storage import migrate
from tests.conftest import migrate_to
from tests.contract.test_schema import HEAD
from tests.e2e._process import SIGNOFF, env_for, free_port
from tests.fakes.slack import FakeSlack

REPO = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((REPO / "manifest.yml").read_text())
SCOPES: list[str] = MANIFEST["oauth_config"]["scopes"]["bot"]
PUBLIC = "https://signoff.acme.test"
TOKEN = "xoxb-1234-very-secret-token"
SIGNING = "0123456789abcdef-signing-secret"
WORKFLOW = """\
id: hello
inputs: {type: object, properties: {}}
nodes:
  - {id: hi, type: set, data: {hello: true}}
edges: []
"""


def manifest_for(public_url: str) -> str:
    text = (REPO / "manifest.yml").read_text()
    return text.replace("https://signoff.example.com", public_url)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "hello.yml").write_text(WORKFLOW)
    (tmp_path / "roles.yml").write_text("")
    (tmp_path / "manifest.yml").write_text(manifest_for(PUBLIC))
    return tmp_path


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as running:
        running.api.scopes = list(SCOPES)
        yield running


def slack_env(workdir: Path, fake: FakeSlack, **extra: str) -> dict[str, str]:
    url = f"sqlite:///{workdir / 'signoff.db'}"
    migrate(url)
    slack = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING,
        "SLACK_API_URL": fake.base_url,
        "SIGNOFF_PUBLIC_URL": PUBLIC,
    }
    return env_for(url, workdir, free_port(), **{**slack, **extra})


async def doctor(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        SIGNOFF,
        "doctor",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def report(env: dict[str, str], cwd: Path) -> tuple[int, dict[str, Any]]:
    code, out, err = await doctor(env, cwd, "--json")
    assert "Traceback" not in err, err
    body: dict[str, Any] = json.loads(out)
    return code, body


def levels(body: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for check in body["checks"]:
        found.setdefault(check["check"], []).append(check["level"])
    return found


def failures(body: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["detail"] for c in body["checks"] if c["level"] == "fail"}


async def test_a_healthy_deployment_passes_and_shows_where_each_setting_came_from(
    workdir: Path, fake: FakeSlack
) -> None:
    env = slack_env(workdir, fake)
    env.pop("SIGNOFF_QUEUE_CHANNEL", None)
    (workdir / ".env").write_text("SIGNOFF_QUEUE_CHANNEL=C0QUEUE\nSIGNOFF_PORT=1\n")  # env wins for PORT
    code, body = await report(env, workdir)
    assert code == 0, failures(body)
    assert body["ok"] is True
    rows = {r["variable"]: r for r in body["settings"]}
    assert (rows["SIGNOFF_QUEUE_CHANNEL"]["value"], rows["SIGNOFF_QUEUE_CHANNEL"]["source"]) == (
        "C0QUEUE",
        ".env",
    )
    assert (rows["SIGNOFF_PORT"]["source"], rows["SIGNOFF_PORT"]["value"]) == ("env", env["SIGNOFF_PORT"])
    assert (rows["SIGNOFF_DELEGATION_MAX_DAYS"]["source"], rows["SIGNOFF_DELEGATION_MAX_DAYS"]["value"]) == (
        "default",
        "30.0",
    )
    assert rows["SLACK_BOT_TOKEN"]["value"] == "(set)"
    assert [
        c["level"] for c in body["checks"] if c["check"] in {"database", "schema", "slack", "scopes"}
    ] == ["ok"] * 4
    assert fake.calls_to("auth.test")
    # the text report: a table, a line per check, and no secret anywhere
    code, text, err = await doctor(env, workdir)
    assert code == 0
    assert "no problems found" in text
    for secret in (TOKEN, SIGNING):
        assert secret not in text + err
        assert secret not in json.dumps(body)


async def test_missing_scopes_and_a_refused_token(workdir: Path, fake: FakeSlack) -> None:
    env = slack_env(workdir, fake)
    fake.api.scopes = [s for s in SCOPES if s not in {"usergroups:read", "channels:read"}] + ["files:write"]
    code, body = await report(env, workdir)
    assert code == 1
    assert failures(body) == {
        "scopes": "the token lacks channels:read, usergroups:read: update the app from manifest.yml "
        "and reinstall it to the workspace"
    }
    assert {
        "check": "manifest",
        "level": "warn",
        "detail": "granted but not in manifest.yml: files:write",
    } in body["checks"]
    fake.fail("auth.test", error="invalid_auth")
    code, body = await report(env, workdir)
    assert code == 1
    assert failures(body)["slack"] == "auth.test refused the bot token: invalid_auth"


async def test_manifest_drift(workdir: Path, fake: FakeSlack) -> None:
    env = slack_env(workdir, fake, SIGNOFF_PUBLIC_URL="https://elsewhere.acme.test/")
    code, body = await report(env, workdir)
    assert code == 1
    drift = failures(body)["manifest"]
    assert drift.startswith("request URLs should be https://elsewhere.acme.test/slack/events:")
    assert "slash command /signoff -> https://signoff.acme.test/slack/events" in drift
    code, body = await report({**env, "SLACK_APP_TOKEN": "xapp-1-test"}, workdir)
    assert failures(body)["manifest"].endswith("has socket_mode_enabled off but SLACK_APP_TOKEN is set")


async def test_an_unreachable_database(workdir: Path) -> None:
    env = env_for("postgresql://signoff:hunter2@127.0.0.1:1/signoff", workdir, free_port())
    code, body = await report(env, workdir)
    assert code == 1
    assert failures(body)["database"].startswith("unreachable: database error")
    rows = {r["variable"]: r["value"] for r in body["settings"]}
    assert rows["SIGNOFF_DATABASE_URL"] == "postgresql://signoff:***@127.0.0.1:1/signoff"
    assert "hunter2" not in json.dumps(body)


async def test_an_old_schema_without_auto_migrate(empty_url: str, workdir: Path) -> None:
    migrate_to(empty_url, "0002")
    env = env_for(empty_url, workdir, free_port(), SIGNOFF_AUTO_MIGRATE="off")
    code, body = await report(env, workdir)
    assert code == 1
    assert failures(body) == {
        "schema": f"the database schema is revision 0002 but this version of Signoff needs revision {HEAD}: "
        "run `signoff db upgrade`"
    }
    # with auto-migrate (SQLite's default) serve would migrate it: not a problem
    code, body = await report({**env, "SIGNOFF_AUTO_MIGRATE": "on"}, workdir)
    assert code == 0, failures(body)


async def test_no_sandbox_bad_workflows_and_unknown_settings(workdir: Path) -> None:
    (workdir / "workflows" / "broken.yml").write_text("id: broken\nnodes: [{id: a, type: nope}]\n")
    env = env_for(
        f"sqlite:///{workdir / 's.db'}",
        workdir,
        free_port(),
        SIGNOFF_SANDBOX="docker",
        SIGNOFF_DATABSE_URL="sqlite:///typo.db",
    )
    env.pop("SIGNOFF_DOCKER_IMAGE", None)
    code, body = await report(env, workdir)
    assert code == 1
    found = failures(body)
    assert found["sandbox"].startswith(
        "unavailable, code and skill nodes will fail: SIGNOFF_SANDBOX=docker needs"
    )
    assert found["workflows"].startswith(str(workdir / "workflows" / "broken.yml"))
    assert {
        "check": "settings",
        "level": "warn",
        "detail": "SIGNOFF_DATABSE_URL is not a setting Signoff reads (a typo?)",
    } in body["checks"]
    assert not (workdir / "s.db").exists(), "doctor must not create the database"


async def test_a_bad_setting_is_reported_not_raised(workdir: Path) -> None:
    env = env_for(f"sqlite:///{workdir / 's.db'}", workdir, free_port(), SIGNOFF_PORT="eighty")
    code, body = await report(env, workdir)
    assert code == 1
    assert failures(body) == {"settings": "SIGNOFF_PORT must be a port number, not 'eighty'"}
    assert {r["variable"]: r["value"] for r in body["settings"]}["SIGNOFF_PORT"] == "eighty"


def test_every_setting_is_listed_under_the_name_config_reads() -> None:
    source = (REPO / "bot" / "config.py").read_text()
    names = [v.name for v in variables() if v.field is not None]
    # ``login`` and ``limits``: the sign-in's variables and one per execution limit
    assert len(names) == len(Settings.model_fields) - 2
    missing = [name for name in names if f'"{name}"' not in source]
    assert missing == []
    login = (REPO / "bot" / "login_config.py").read_text()
    assert [n for n in LOGIN_VARIABLES if f'"{n}"' not in login] == []
    assert set(LOGIN_VARIABLES) <= {v.name for v in variables()}
    limits = (REPO / "bot" / "_limits_config.py").read_text()
    assert [n for n in LIMIT_VARIABLES if f'"{n}"' not in limits] == []
    assert set(LIMIT_VARIABLES) <= {v.name for v in variables()}
