"""The checks of ``signoff doctor`` (private: see ``bot.doctor``).

Each check returns ``Finding``s: ``ok``, ``warn`` (worth knowing, changes nothing) or ``fail``
(Signoff will not work as configured). Nothing here changes anything: a SQLite file that does
not exist is not created, no migration runs, Slack is only asked ``auth.test``.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from bot.config import ConfigError, Settings
from bot.wiring import SchemaState, adapters, probe_sandbox, read_schema
from engine.catalog import WorkflowCatalog
from engine.errors import EngineError, InvalidWorkflow
from engine.roles import load_roles

__all__ = [
    "EVENTS_PATH",
    "Finding",
    "Level",
    "check_database",
    "check_manifest",
    "check_sandbox",
    "check_slack",
    "check_workflows",
]

EVENTS_PATH = "/slack/events"
_SCOPES_HEADER = "x-oauth-scopes"


class Level(StrEnum):
    """How bad a finding is."""

    ok = "ok"
    warn = "warn"
    fail = "fail"


class Finding(BaseModel):
    """One line of the report."""

    model_config = ConfigDict(frozen=True)

    check: str
    level: Level
    detail: str


def _ok(check: str, detail: str) -> Finding:
    return Finding(check=check, level=Level.ok, detail=detail)


def _warn(check: str, detail: str) -> Finding:
    return Finding(check=check, level=Level.warn, detail=detail)


def _fail(check: str, detail: str) -> Finding:
    return Finding(check=check, level=Level.fail, detail=detail)


async def check_database(settings: Settings) -> list[Finding]:
    """Reachable, and a schema this version can run on (or that serve will migrate)."""
    try:
        status = await read_schema(settings)
    except EngineError as exc:
        return [_fail("database", f"unreachable: {exc}")]
    found = [_ok("database", "reachable")]
    if status.state is SchemaState.current:
        found.append(_ok("schema", status.describe()))
    elif status.state is SchemaState.ahead:
        found.append(_warn("schema", status.describe()))
    elif settings.auto_migrate:
        found.append(_ok("schema", f"{status.describe()} (SIGNOFF_AUTO_MIGRATE is on: serve does it)"))
    else:
        found.append(_fail("schema", status.describe()))
    return found


async def check_sandbox(settings: Settings) -> list[Finding]:
    """The backend ``code`` and ``skill`` nodes would run in."""
    try:
        name = await asyncio.to_thread(probe_sandbox, settings)
    except EngineError as exc:
        return [_fail("sandbox", f"unavailable, code and skill nodes will fail: {exc}")]
    return [_ok("sandbox", f"{name} works here")]


async def check_workflows(settings: Settings) -> list[Finding]:
    """The roles file and every workflow file load."""
    try:
        roles = load_roles(settings.roles_file)
    except InvalidWorkflow as exc:
        return [_fail("roles", f"{settings.roles_file}: {exc}")]
    try:
        tools = await asyncio.to_thread(adapters, settings)
    except (ConfigError, EngineError):
        # the sandbox check reports that; the files are still worth checking without it
        tools = await asyncio.to_thread(adapters, settings, with_sandbox=False)
    try:
        catalog = WorkflowCatalog.from_directory(
            settings.workflows_dir, roles=roles, skills=tools.skills, llm_available=tools.llm is not None
        )
    finally:
        await tools.close()
    found = [_ok("roles", f"{len(roles)} role(s) in {settings.roles_file}")]
    if not settings.workflows_dir.is_dir():
        return [*found, _warn("workflows", f"{settings.workflows_dir} is not a folder: no workflows")]
    for broken in catalog.errors:
        first = next(iter(broken.issues), None)
        found.append(_fail("workflows", str(first) if first is not None else str(broken)))
    ids = catalog.ids()
    found.append(_ok("workflows", f"{len(ids)} loaded from {settings.workflows_dir}: {', '.join(ids)}"))
    return found


def _manifest_scopes(manifest: dict[str, Any] | None) -> set[str] | None:
    if manifest is None:
        return None
    scopes = ((manifest.get("oauth_config") or {}).get("scopes") or {}).get("bot") or []
    return {str(s) for s in scopes}


async def check_slack(settings: Settings, manifest: dict[str, Any] | None) -> list[Finding]:
    """``auth.test`` accepts the token; the scopes it reports match the manifest's."""
    if not settings.slack_enabled:
        return [_ok("slack", "off: local mode (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET unset)")]
    if settings.slack_multi:
        where = (settings.public_url or "").rstrip("/") + "/slack/install"
        found = [
            _ok("slack", f"many workspaces: each installs Signoff at {where}; tokens are checked per request")
        ]
        if not settings.public_url:
            found.append(
                _warn(
                    "slack", "SIGNOFF_PUBLIC_URL is unset: the install flow uses the app's own redirect URL"
                )
            )
        return found
    from slack_sdk.errors import SlackApiError, SlackClientError
    from slack_sdk.web.async_client import AsyncWebClient

    base = settings.slack_api_url or AsyncWebClient.BASE_URL
    client = AsyncWebClient(
        token=settings.slack_bot_token, base_url=base if base.endswith("/") else base + "/"
    )
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        return [_fail("slack", f"auth.test refused the bot token: {exc.response.get('error')}")]
    except (SlackClientError, OSError, TimeoutError) as exc:
        return [_fail("slack", f"Slack could not be reached: {exc}")]
    found = [_ok("slack", f"auth.test ok: bot {response.get('user_id')} in team {response.get('team_id')}")]
    headers = {str(k).lower(): str(v) for k, v in (response.headers or {}).items()}
    if _SCOPES_HEADER not in headers:
        return [*found, _warn("scopes", "Slack did not report the token's scopes (x-oauth-scopes)")]
    granted = {s.strip() for s in headers[_SCOPES_HEADER].split(",") if s.strip()}
    wanted = _manifest_scopes(manifest)
    if wanted is None:
        return [*found, _ok("scopes", f"granted: {', '.join(sorted(granted))}")]
    if missing := wanted - granted:
        found.append(
            _fail(
                "scopes",
                f"the token lacks {', '.join(sorted(missing))}: update the app from manifest.yml "
                "and reinstall it to the workspace",
            )
        )
    else:
        found.append(_ok("scopes", f"every scope manifest.yml asks for is granted ({len(wanted)})"))
    if extra := granted - wanted:
        found.append(_warn("manifest", f"granted but not in manifest.yml: {', '.join(sorted(extra))}"))
    return found


def load_manifest(path: Path) -> tuple[dict[str, Any] | None, Finding | None]:
    """The manifest as a dict, or None and why not."""
    if not path.is_file():
        return None, _warn("manifest", f"{path} not found: manifest checks skipped")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return None, _fail("manifest", f"{path}: not readable YAML: {exc}")
    if not isinstance(data, dict):
        return None, _fail("manifest", f"{path}: not a mapping")
    return data, None


def _request_urls(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    features = manifest.get("features") or {}
    settings = manifest.get("settings") or {}
    urls = [(f"slash command {c.get('command')}", c.get("url")) for c in features.get("slash_commands") or []]
    urls.append(("event subscriptions", (settings.get("event_subscriptions") or {}).get("request_url")))
    urls.append(("interactivity", (settings.get("interactivity") or {}).get("request_url")))
    return [(where, str(url)) for where, url in urls if url]


def check_manifest(settings: Settings, manifest: dict[str, Any] | None, path: Path) -> list[Finding]:
    """Drift between manifest.yml and this deployment: request URLs and Socket Mode."""
    if manifest is None or not settings.slack_enabled:
        return []
    socket = bool((manifest.get("settings") or {}).get("socket_mode_enabled"))
    if bool(settings.slack_app_token) != socket:
        mode = "on" if socket else "off"
        token = "set" if settings.slack_app_token else "unset"
        return [_fail("manifest", f"{path} has socket_mode_enabled {mode} but SLACK_APP_TOKEN is {token}")]
    if socket:
        return [_ok("manifest", "Socket Mode, as SLACK_APP_TOKEN says")]
    if not settings.public_url:
        return [
            _warn("manifest", "SIGNOFF_PUBLIC_URL is unset: request URLs in the manifest cannot be checked")
        ]
    wanted = settings.public_url.rstrip("/") + EVENTS_PATH
    wrong = [f"{where} -> {url}" for where, url in _request_urls(manifest) if url != wanted]
    if wrong:
        return [_fail("manifest", f"request URLs should be {wanted}: {'; '.join(wrong)}")]
    return [_ok("manifest", f"request URLs point at {wanted}")]
