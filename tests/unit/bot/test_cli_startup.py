"""``signoff --help`` and ``signoff tasks`` start fast because they import only what they use.

Speed itself is measured by bench/cli.py (docs/benchmarks.md); these tests pin its cause: which
heavy libraries a fresh process has imported after the command (never wall-clock time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# what `--help` must never import: the database, HTTP, Slack, LLM, containers, templates, CEL,
# schemas, YAML, the engine's models and the adapters
HEAVY_FOR_HELP = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "psycopg",
    "aiohttp",
    "slack_bolt",
    "slack_sdk",
    "anthropic",
    "docker",
    "jinja2",
    "celpy",
    "lark",
    "jsonschema",
    "yaml",
    "apscheduler",
    "storage",
    "skills",
    "engine.model",
    "engine.service",
    "bot.wiring",
    "bot.config",
)
# `tasks` reads the database with its driver alone: no SQLAlchemy or table classes, no workflow
# loaded, no engine built, nobody talked to
HEAVY_FOR_TASKS = (
    "sqlalchemy",
    "sqlmodel",
    "storage.store",
    "storage.tables",
    "storage.mapping",
    "asyncio",  # the light path never waits: no event loop
    "alembic",
    "aiohttp",
    "slack_bolt",
    "slack_sdk",
    "anthropic",
    "docker",
    "jinja2",
    "celpy",
    "lark",
    "jsonschema",
    "apscheduler",
    "skills",
    "engine.service",
    "engine.loader",
    "engine.catalog",
)

_PROBE = """
import json, sys
from bot.cli import app
code = None
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _imported_by(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


@pytest.mark.parametrize("args", [["--help"], [], ["audit", "--help"], ["respond", "--help"]])
def test_help_imports_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    code, modules = _imported_by(args, tmp_path)
    assert code in (0, 2)  # `signoff` alone shows the help and exits 2, as Typer does
    assert "typer" in modules  # the probe ran the CLI
    assert _loaded(modules, HEAVY_FOR_HELP) == []
    if "--help" not in args[1:]:  # a command's own help: Typer reads its options through pydantic
        assert "pydantic" not in modules


def test_every_command_module_is_registered_and_listed(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--help"],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    for command in ("validate", "run", "tasks", "respond", "show", "serve", "audit", "keys", "db", "doctor"):
        assert f" {command} " in result.stdout, result.stdout


def test_tasks_reads_the_store_without_loading_workflows_or_adapters(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "SIGNOFF_"))}
    env.update(
        SIGNOFF_DATABASE_URL=f"sqlite:///{tmp_path / 's.db'}", SIGNOFF_ROLES_FILE=str(tmp_path / "r.yml")
    )
    first, _ = _imported_by(["tasks"], tmp_path, env)  # creates the schema (this one may migrate)
    assert first == 0
    code, modules = _imported_by(["tasks"], tmp_path, env)
    assert code == 0
    assert "storage.light" in modules  # the probe did read the database
    assert _loaded(modules, HEAVY_FOR_TASKS) == []
    # a page after a given checkpoint, overdue ones, as JSON: the same light path
    code, modules = _imported_by(["tasks", "--overdue", "--limit", "5", "--json"], tmp_path, env)
    assert code == 0
    assert _loaded(modules, HEAVY_FOR_TASKS) == []
