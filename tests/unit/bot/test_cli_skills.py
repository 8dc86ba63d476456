"""``signoff skills list | show | test | publish`` on the shipped library and a scratch copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

LIBRARY = Path("skills/library")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI on the shipped library, without an API key."""
    monkeypatch.setenv("SIGNOFF_SKILLS_DIR", str(LIBRARY.resolve()))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    return CliRunner()


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of refund-policy@1.0.0 as an unpublished library, used by the next commands."""
    root = tmp_path / "library"
    shutil.copytree(LIBRARY / "refund-policy", root / "refund-policy")
    monkeypatch.setenv("SIGNOFF_SKILLS_DIR", str(root))
    return root


def test_list_shows_every_version(cli: CliRunner) -> None:
    result = cli.invoke(app, ["skills", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["ref"]: row for row in json.loads(result.output)}
    assert set(rows) >= {"refund-policy@1.0.0", "pii-redact@1.0.0", "summarize-ticket@1.0.0"}
    assert rows["summarize-ticket@1.0.0"]["kind"] == "prompt"
    assert rows["refund-policy@1.0.0"]["published"] is True
    table = cli.invoke(app, ["skills", "list"], env={"COLUMNS": "200"})
    assert "refund-policy@1.0.0" in table.output


def test_show_prints_the_contract_and_sop(cli: CliRunner) -> None:
    result = cli.invoke(app, ["skills", "show", "refund-policy"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "refund-policy@1.0.0 (command skill, published)" in result.output
    assert "customer_tier" in result.output
    assert "review-over-limit" in result.output
    as_json = json.loads(cli.invoke(app, ["skills", "show", "pii-redact@1.0.0", "--json"]).output)
    assert as_json["sop"].strip()


def test_test_runs_the_fixtures_in_the_sandbox(cli: CliRunner) -> None:
    result = cli.invoke(app, ["skills", "test", "refund-policy@1.0.0", "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads(result.output)
    assert len(results) == 4
    assert all(r["passed"] for r in results)


def test_unknown_skill_exits_2(cli: CliRunner) -> None:
    result = cli.invoke(app, ["skills", "test", "refund-polcy"])
    assert result.exit_code == 2
    assert "unknown skill 'refund-polcy'" in result.output


def test_prompt_skill_without_a_key_fails_and_says_why(cli: CliRunner) -> None:
    result = cli.invoke(app, ["skills", "test", "summarize-ticket"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "needs an LLM" in result.output
    assert "prompt skills need ANTHROPIC_API_KEY" in result.output


def test_a_failing_fixture_exits_2(cli: CliRunner, scratch: Path) -> None:
    fixture = scratch / "refund-policy" / "1.0.0" / "fixtures" / "zz-wrong.yml"
    fixture.write_text(
        "input: {amount: 10, customer_tier: gold, reason: damaged box}\nexpect: {decision: deny}\n"
    )
    result = cli.invoke(app, ["skills", "test", "refund-policy"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "zz-wrong" in result.output
    assert "expected 'deny', got 'auto'" in result.output
    assert "4 passed, 1 failed" in result.output


def test_publish_records_the_hash(cli: CliRunner, scratch: Path) -> None:
    result = cli.invoke(app, ["skills", "publish", "refund-policy@1.0.0"])
    assert result.exit_code == 0, result.output
    lock = json.loads((scratch / "skills.lock.json").read_text())
    assert lock["refund-policy@1.0.0"].startswith("sha256:")
    unpinned = cli.invoke(app, ["skills", "publish", "refund-policy"])
    assert unpinned.exit_code == 2
    assert "is not pinned" in unpinned.output
