"""``signoff doctor``: every setting, where it came from, and what is wrong.

Settings are listed with their source (``env``, ``.env`` or ``default``); secrets show only
whether they are set. Then the checks (``bot._doctor_checks``): the database and its schema,
the roles and workflow files, the sandbox, Slack's ``auth.test`` with the scopes it reports
against manifest.yml, and the manifest against this deployment. Exit 0 when no check fails,
1 otherwise (warnings do not count).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bot._cli_output import console, print_json

# the checks (database, Slack, sandbox) and the settings are imported when the command runs
if TYPE_CHECKING:
    from bot._doctor_checks import Finding
    from bot.config import Settings

__all__ = ["Variable", "register", "variables"]

# Settings fields whose variable does not follow SIGNOFF_<FIELD> (bot/config.py reads these names)
_NAMES = {
    "lease_ttl_s": "SIGNOFF_LEASE_TTL",
    "shutdown_grace_s": "SIGNOFF_SHUTDOWN_GRACE",
    "slack_teams": "SIGNOFF_SLACK_TEAMS",
    "fault_points": "SIGNOFF_TEST_FAULTS",
    "workflows_reload_s": "SIGNOFF_WORKFLOWS_RELOAD",
    "otel_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
}
_UNPREFIXED = ("slack_", "anthropic_")
# read from the process environment by the sandbox rather than through Settings
_EXTRA = ("SIGNOFF_DOCKER_IMAGE", "DOCKER_HOST")
_SECRET = re.compile(r"token|secret|key|password", re.IGNORECASE)
_MARK = {"ok": "[green]ok[/green]  ", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}  # by Level


@dataclass(frozen=True)
class Variable:
    """One environment variable: the Settings field it fills (None: read elsewhere)."""

    name: str
    field: str | None
    secret: bool


def variables() -> list[Variable]:
    """Every variable Signoff reads: one per Settings field (the sign-in's several), plus the
    sandbox's own."""
    from bot._limits_config import LIMIT_VARIABLES
    from bot.config import Settings
    from bot.login_config import VARIABLES as LOGIN_VARIABLES

    found = []
    for field in Settings.model_fields:
        if field == "login":  # the console sign-in reads many (bot/login_config.py)
            found += [Variable(name, None, bool(_SECRET.search(name))) for name in LOGIN_VARIABLES]
            continue
        if field == "limits":  # one variable per limit (bot/_limits_config.py)
            found += [Variable(name, None, False) for name in LIMIT_VARIABLES]
            continue
        name = _NAMES.get(field) or (
            field.upper() if field.startswith(_UNPREFIXED) else f"SIGNOFF_{field.upper()}"
        )
        found.append(Variable(name, field, bool(_SECRET.search(field))))
    # SLACK_CLIENT_ID and SLACK_CLIENT_SECRET serve both the install flow and the sign-in: once
    named = {v.name: v for v in reversed(found)}
    found = [v for v in found if named[v.name] is v]
    return found + [Variable(name, None, False) for name in _EXTRA]


def _masked_url(value: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", value)


def _shown(var: Variable, raw: str | None, settings: Settings | None) -> str:
    if var.field is not None and settings is not None:
        value: Any = getattr(settings, var.field)
    else:
        value = raw
    if value is None or value == "":
        return "(unset)"
    if var.secret:
        return "(set)"
    return _masked_url(str(value))


def _sources() -> tuple[dict[str, str], dict[str, str]]:
    from dotenv import dotenv_values

    file_values = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    return file_values, dict(os.environ)


def _settings_rows(settings: Settings | None) -> list[dict[str, str]]:
    file_values, env = _sources()
    rows = []
    for var in variables():
        source = "env" if var.name in env else ".env" if var.name in file_values else "default"
        raw = env.get(var.name, file_values.get(var.name))
        rows.append({"variable": var.name, "value": _shown(var, raw, settings), "source": source})
    return rows


def _unknown() -> list[Finding]:
    from bot._doctor_checks import Finding, Level

    file_values, env = _sources()
    known = {v.name for v in variables()}
    names = sorted(
        n for n in {*file_values, *env} if n.startswith("SIGNOFF_") and not n.startswith("SIGNOFF_TEST_")
    )
    return [
        Finding(check="settings", level=Level.warn, detail=f"{n} is not a setting Signoff reads (a typo?)")
        for n in names
        if n not in known
    ]


async def _findings(settings: Settings, manifest_path: Path) -> list[Finding]:
    import asyncio

    from bot._doctor_checks import (
        check_database,
        check_manifest,
        check_sandbox,
        check_slack,
        check_workflows,
        load_manifest,
    )

    manifest, problem = load_manifest(manifest_path)
    found = [] if problem is None else [problem]
    for group in await asyncio.gather(
        check_database(settings),
        check_workflows(settings),
        check_sandbox(settings),
        check_slack(settings, manifest),
    ):
        found += group
    return found + check_manifest(settings, manifest, manifest_path)


def register(app: typer.Typer) -> None:
    """Attach ``signoff doctor`` to the main app."""
    app.command()(doctor)


def doctor(
    manifest: Annotated[Path, typer.Option(help="the Slack app manifest to compare with")] = Path(
        "manifest.yml"
    ),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print every setting and where it came from, then check what is wrong (exit 1 if anything is)."""
    import asyncio

    from bot._doctor_checks import Finding, Level
    from bot.config import ConfigError, Settings

    try:
        settings: Settings | None = Settings.from_env()
    except ConfigError as exc:
        settings, found = None, [Finding(check="settings", level=Level.fail, detail=str(exc))]
    if settings is not None:
        found = asyncio.run(_findings(settings, manifest))
    found = _unknown() + found
    rows = _settings_rows(settings)
    failed = any(f.level is Level.fail for f in found)
    if as_json:
        print_json({"ok": not failed, "settings": rows, "checks": [f.model_dump(mode="json") for f in found]})
    else:
        _print(rows, found)
    if failed:
        raise typer.Exit(1)


def _print(rows: list[dict[str, str]], found: list[Finding]) -> None:
    from bot._doctor_checks import Level

    table = Table("variable", "value", "source", title="settings", title_justify="left")
    for row in rows:
        table.add_row(row["variable"], escape(row["value"]), row["source"])
    console.print(table)
    for f in found:
        console.print(f"{_MARK[f.level]} {f.check}: {escape(f.detail)}", highlight=False, soft_wrap=True)
    failed = sum(f.level is Level.fail for f in found)
    console.print(f"{failed} problem(s) found" if failed else "no problems found", highlight=False)
