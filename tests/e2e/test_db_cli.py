"""``signoff db upgrade|current`` and ``serve`` refusing a schema older than its code, as processes.

On PostgreSQL replicas do not migrate (``SIGNOFF_AUTO_MIGRATE`` defaults off): a deploy step runs
``signoff db upgrade`` once. Before, every ``serve`` ran ``upgrade head`` at start-up.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from storage import schema_status
from tests.conftest import drop_pg_schema, migrate_to, pg_schema_url
from tests.contract.test_schema import HEAD
from tests.e2e._process import SIGNOFF, cli, cli_json, env_for, free_port, kill, start_server, wait_healthy


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "roles.yml").write_text("", encoding="utf-8")
    return tmp_path


def serve_until_exit(
    env: dict[str, str], cwd: Path, timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """Run ``signoff serve``; a server that starts instead of refusing fails the test."""
    try:
        return subprocess.run(
            [SIGNOFF, "serve"], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"serve did not refuse within {timeout}s: it is serving\n{exc.stdout!r}"
        ) from exc


def test_serve_refuses_an_older_schema_until_db_upgrade(empty_url: str, workdir: Path) -> None:
    migrate_to(empty_url, "0002")  # what the previous release left
    port = free_port()
    # off is the default on PostgreSQL; SQLite has to ask for it
    env = env_for(empty_url, workdir, port, SIGNOFF_AUTO_MIGRATE="off")
    refused = serve_until_exit(env, workdir)
    assert refused.returncode == 2, refused.stderr
    [line] = refused.stderr.strip().splitlines()[-1:]
    assert line == (
        f"error: the database schema is revision 0002 but this version of Signoff needs revision {HEAD}: "
        "run `signoff db upgrade`"
    )
    assert "Traceback" not in refused.stderr
    assert schema_status(empty_url).current == "0002", "a refusing replica must not migrate"

    shown = cli_json(env, workdir, "db", "current")
    assert shown == {"current": "0002", "head": HEAD, "state": "behind"}
    upgraded = cli(env, workdir, "db", "upgrade")
    assert f"upgraded the database schema from 0002 to {HEAD}" in upgraded.stdout
    assert "nothing to do" in cli(env, workdir, "db", "upgrade").stdout
    assert cli_json(env, workdir, "db", "current")["state"] == "current"

    server = start_server(env, workdir)
    try:
        assert wait_healthy(port, server)["ok"] is True
    finally:
        kill(server)


@pytest.mark.postgres
def test_postgres_replicas_do_not_migrate_an_empty_database_by_default(workdir: Path) -> None:
    schema = f"signoff_s_{uuid.uuid4().hex[:10]}"
    url = pg_schema_url(schema)
    try:
        refused = serve_until_exit(env_for(url, workdir, free_port()), workdir)
        assert refused.returncode == 2
        assert "the database schema is empty (no tables)" in refused.stderr
        assert "run `signoff db upgrade`" in refused.stderr
        assert schema_status(url).current is None
    finally:
        drop_pg_schema(schema)


def test_sqlite_still_migrates_on_start_by_default(workdir: Path) -> None:
    port = free_port()
    url = f"sqlite:///{workdir / 'fresh.db'}"
    server = start_server(env_for(url, workdir, port), workdir)
    try:
        wait_healthy(port, server)
    finally:
        kill(server)
    assert schema_status(url).current == HEAD


def test_auto_migrate_must_be_on_or_off(workdir: Path) -> None:
    env = env_for(f"sqlite:///{workdir / 'x.db'}", workdir, free_port(), SIGNOFF_AUTO_MIGRATE="sometimes")
    refused = serve_until_exit(env, workdir)
    assert refused.returncode == 2
    assert "SIGNOFF_AUTO_MIGRATE must be on or off, not 'sometimes'" in refused.stderr


def test_db_upgrade_on_an_unreachable_database_says_so(workdir: Path) -> None:
    env = env_for("postgresql://nobody@127.0.0.1:1/none", workdir, free_port())
    result = cli(env, workdir, "db", "upgrade", check=1)
    assert result.stderr.startswith("error: could not migrate the database: database error")
    assert "Traceback" not in result.stderr
    refused = serve_until_exit(env, workdir)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
