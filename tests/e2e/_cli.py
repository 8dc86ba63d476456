"""The CLI as a person runs it locally: no Slack or Anthropic credentials, one database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app


def local_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, *, workflows: Path, roles: Path
) -> CliRunner:
    """A runner for ``bot.cli.app`` in ``tmp_path`` on ``database_url`` with these workflows and
    roles, code nodes in the subprocess sandbox."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", database_url)
    monkeypatch.setenv("SIGNOFF_WORKFLOWS_DIR", str(workflows))
    monkeypatch.setenv("SIGNOFF_ROLES_FILE", str(roles))
    monkeypatch.setenv("SIGNOFF_SKILLS_DIR", str(tmp_path / "no-skills"))
    monkeypatch.setenv("SIGNOFF_WORKSPACE_DIR", str(tmp_path / "workspaces"))
    monkeypatch.setenv("SIGNOFF_SANDBOX", "subprocess")
    return CliRunner()


def empty_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, *, roles: str) -> CliRunner:
    """``local_cli`` with an empty workflows folder and a roles file holding ``roles``."""
    (tmp_path / "workflows").mkdir()
    (tmp_path / "roles.yml").write_text(roles)
    return local_cli(
        monkeypatch, tmp_path, database_url, workflows=tmp_path / "workflows", roles=tmp_path / "roles.yml"
    )


def invoke(cli: CliRunner, *args: str, code: int = 0) -> Result:
    """Run ``signoff ARGS`` and check its exit code (the output is in the failure message)."""
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output)
    return result
