"""Settings from the environment (and a ``.env`` file when present)."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from bot._limits_config import read_limits
from bot.login_config import LoginSettings, read_login
from engine.egress import EgressPolicy
from engine.errors import EngineError
from engine.model import Limits

__all__ = ["ConfigError", "Settings", "database_problem", "port_problem", "shown_url"]

_MIN_SECRET = 32
_MIN_TOKEN = 16
# a Host header value: a DNS name, an IPv4 address or a bracketed IPv6 address, and an optional port
_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?"
)


class ConfigError(EngineError):
    """Misconfiguration found at start-up; the message names the variable."""


class Settings(BaseModel):
    """Every setting Signoff reads (architecture.md §8)."""

    model_config = ConfigDict(frozen=True)

    database_url: str = "sqlite:///./signoff.db"
    workflows_dir: Path = Path("workflows")
    skills_dir: Path = Path("skills/library")
    roles_file: Path = Path("roles.yml")
    host: str = "127.0.0.1"
    port: int = 3000
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    # multi-workspace mode (the OAuth v2 install flow): no SLACK_BOT_TOKEN, the app's credentials,
    # and the key that encrypts every workspace's tokens at rest (docs/deploy.md, docs/security.md)
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    token_key: SecretStr | None = None
    # multi-workspace mode: the workspaces (team or enterprise ids) that may install Signoff
    slack_teams: frozenset[str] = frozenset()
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    default_model: str = "claude-sonnet-4-6"
    sandbox: str = "auto"
    queue_channel: str | None = None
    public_url: str | None = None
    workspace_dir: Path = Path(".signoff/workspaces")
    fault_points: str | None = None
    lease_ttl_s: float = 30.0
    web_console: bool = False
    delegation_max_days: float = 30.0
    secret_key: SecretStr | None = None
    secret_key_file: Path = Path(".signoff/secret_key")
    allowed_hosts: tuple[str, ...] = ()
    http_allow: EgressPolicy = EgressPolicy()
    login: LoginSettings = LoginSettings()  # SIGNOFF_AUTH and the rest: bot/login_config.py
    # deployment (docs/deploy.md): migrate at start-up, and how long SIGTERM waits for work
    auto_migrate: bool = True
    shutdown_grace_s: float = 20.0
    # how often the server looks for changed workflow files (0: never; restart to reload)
    workflows_reload_s: float = 1.0
    limits: Limits = Limits()  # SIGNOFF_MAX_STEPS, _WALL_TIME, _TOKENS, _COST: every run's limits
    # telemetry (docs/observability.md): who may scrape /metrics, log format, trace export
    metrics_token: SecretStr | None = None
    log_format: str = "auto"
    otel_endpoint: str | None = None

    def secrets(self) -> list[str]:
        """Every secret value this process holds, so that logs can mask them."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.anthropic_api_key,
            self.secret_key.get_secret_value() if self.secret_key else None,
            self.metrics_token.get_secret_value() if self.metrics_token else None,
            self.slack_client_secret.get_secret_value() if self.slack_client_secret else None,
        ]
        if self.token_key is not None:  # one key, or several separated by commas
            values += [k.strip() for k in self.token_key.get_secret_value().split(",")]
        login = self.login
        values += [c.client_secret.get_secret_value() for c in (login.oidc, login.slack) if c is not None]
        if login.smtp is not None and login.smtp.password is not None:
            values.append(login.smtp.password.get_secret_value())
        return [v for v in values if v]

    @property
    def slack_enabled(self) -> bool:
        """True when the Slack surface should start (one workspace, or many)."""
        return bool(self.slack_bot_token and self.slack_signing_secret) or self.slack_multi

    @property
    def slack_multi(self) -> bool:
        """True in multi-workspace mode: workspaces install Signoff through ``/slack/install``.

        ``SLACK_BOT_TOKEN`` set means one workspace, whatever else is set: ``SLACK_CLIENT_ID``
        and ``SLACK_CLIENT_SECRET`` then serve "Sign in with Slack" only.
        """
        return bool(
            not self.slack_bot_token
            and self.slack_signing_secret
            and self.slack_client_id
            and self.slack_client_secret
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read settings; a ``.env`` file in the working directory is loaded first.

        Raises:
            ConfigError: naming the variable that is wrong or missing.
        """
        if env is None:
            from dotenv import dotenv_values

            file_values = {k: v for k, v in dotenv_values(".env").items() if v is not None}
            env = {**file_values, **os.environ}
        get = env.get
        bot, secret = get("SLACK_BOT_TOKEN") or None, get("SLACK_SIGNING_SECRET") or None
        client_id, client_secret = get("SLACK_CLIENT_ID") or None, get("SLACK_CLIENT_SECRET") or None
        multi = bool(secret and not bot and client_id and client_secret)
        if bot and not secret:
            raise ConfigError(
                "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not: set both for Slack, "
                "or neither for local mode"
            )
        if secret and not bot and not multi:
            raise ConfigError(
                "SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not: set SLACK_BOT_TOKEN for one "
                "workspace, or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for workspaces to install "
                "Signoff through /slack/install, or neither for local mode"
            )
        token_key = _token_key(get("SIGNOFF_TOKEN_KEY") or None, required=multi)
        slack_teams = _slack_teams(get("SIGNOFF_SLACK_TEAMS") or "", required=multi)
        port_raw = get("SIGNOFF_PORT", "3000")
        try:
            port = int(port_raw)
        except ValueError:
            raise ConfigError(f"SIGNOFF_PORT must be a port number, not {port_raw!r}") from None
        sandbox = get("SIGNOFF_SANDBOX", "auto")
        lease_raw = get("SIGNOFF_LEASE_TTL", "30")
        try:
            lease_ttl_s = float(lease_raw)
        except ValueError:
            raise ConfigError(f"SIGNOFF_LEASE_TTL must be a number of seconds, not {lease_raw!r}") from None
        if lease_ttl_s <= 0:
            raise ConfigError(f"SIGNOFF_LEASE_TTL must be positive, not {lease_raw!r}")
        max_raw = get("SIGNOFF_DELEGATION_MAX_DAYS", "30")
        try:
            delegation_max_days = float(max_raw)
        except ValueError:
            raise ConfigError(
                f"SIGNOFF_DELEGATION_MAX_DAYS must be a number of days, not {max_raw!r}"
            ) from None
        if delegation_max_days <= 0:
            raise ConfigError(f"SIGNOFF_DELEGATION_MAX_DAYS must be positive, not {max_raw!r}")
        reload_raw = get("SIGNOFF_WORKFLOWS_RELOAD", "1")
        try:
            workflows_reload_s = float(reload_raw)
        except ValueError:
            raise ConfigError(
                "SIGNOFF_WORKFLOWS_RELOAD must be a number of seconds (0 turns reloading off), "
                f"not {reload_raw!r}"
            ) from None
        if workflows_reload_s < 0:
            raise ConfigError(f"SIGNOFF_WORKFLOWS_RELOAD must be 0 or more seconds, not {reload_raw!r}")
        if sandbox not in {"auto", "bwrap", "docker", "subprocess"}:
            raise ConfigError(f"SIGNOFF_SANDBOX must be auto, bwrap, docker or subprocess, not {sandbox!r}")
        database_url = get("SIGNOFF_DATABASE_URL", "sqlite:///./signoff.db")
        public_url = get("SIGNOFF_PUBLIC_URL") or None
        if public_url is not None:
            _check_public_url(public_url)
        try:
            http_allow = EgressPolicy.parse(get("SIGNOFF_HTTP_ALLOW", ""))
        except ValueError as exc:
            raise ConfigError(f"SIGNOFF_HTTP_ALLOW: {exc}") from None
        try:
            limits = read_limits(get)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        try:
            login = read_login(get, slack_mode=bool(bot and secret) or multi, public_url=public_url)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return cls(
            database_url=database_url,
            workflows_dir=Path(get("SIGNOFF_WORKFLOWS_DIR", "workflows")),
            skills_dir=Path(get("SIGNOFF_SKILLS_DIR", "skills/library")),
            roles_file=Path(get("SIGNOFF_ROLES_FILE", "roles.yml")),
            host=get("SIGNOFF_HOST", "127.0.0.1"),
            port=port,
            slack_bot_token=bot,
            slack_signing_secret=secret,
            slack_app_token=get("SLACK_APP_TOKEN") or None,
            slack_api_url=get("SLACK_API_URL") or None,
            slack_client_id=client_id,
            slack_client_secret=SecretStr(client_secret) if client_secret else None,
            token_key=token_key,
            slack_teams=slack_teams,
            anthropic_api_key=get("ANTHROPIC_API_KEY") or None,
            anthropic_base_url=get("ANTHROPIC_BASE_URL") or None,
            default_model=get("SIGNOFF_DEFAULT_MODEL", "claude-sonnet-4-6"),
            sandbox=sandbox,
            queue_channel=get("SIGNOFF_QUEUE_CHANNEL") or None,
            public_url=public_url,
            workspace_dir=Path(get("SIGNOFF_WORKSPACE_DIR", ".signoff/workspaces")),
            fault_points=get("SIGNOFF_TEST_FAULTS") or None,
            lease_ttl_s=lease_ttl_s,
            workflows_reload_s=workflows_reload_s,
            web_console=get("SIGNOFF_WEB_CONSOLE", "").lower() in {"1", "true", "on", "yes"},
            delegation_max_days=delegation_max_days,
            secret_key=_secret(get("SIGNOFF_SECRET_KEY") or None),
            secret_key_file=Path(get("SIGNOFF_SECRET_KEY_FILE") or ".signoff/secret_key"),
            allowed_hosts=_hosts(get("SIGNOFF_ALLOWED_HOSTS", "")),
            http_allow=http_allow,
            login=login,
            limits=limits,
            **_deployment(get, database_url),
            **_telemetry(get),
        )


def _secret(raw: str | None) -> SecretStr | None:
    if raw is not None and len(raw) < _MIN_SECRET:
        raise ConfigError(
            f"SIGNOFF_SECRET_KEY must be at least {_MIN_SECRET} characters (make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return SecretStr(raw) if raw is not None else None


_MAKE_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


_TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,}$")


def _slack_teams(raw: str, *, required: bool) -> frozenset[str]:
    """``SIGNOFF_SLACK_TEAMS``: the workspace (``T...``) or Enterprise Grid (``E...``) ids that may
    install Signoff. Anyone can start the install flow; only these may complete it."""
    teams = frozenset(t.strip() for t in raw.split(",") if t.strip())
    bad = sorted(t for t in teams if not _TEAM_ID.match(t))
    if bad:
        raise ConfigError(
            f"SIGNOFF_SLACK_TEAMS: {', '.join(bad)} is not a Slack workspace id (T0123ABCD, or E... "
            "for an Enterprise Grid org)"
        )
    if required and not teams:
        raise ConfigError(
            "the Slack install flow (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET without SLACK_BOT_TOKEN) "
            "needs SIGNOFF_SLACK_TEAMS: the ids of the workspaces that may install Signoff, comma "
            "separated (a workspace's id is in its URL, app.slack.com/client/T0123ABCD)"
        )
    return teams


def _token_key(raw: str | None, *, required: bool) -> SecretStr | None:
    """``SIGNOFF_TOKEN_KEY``: comma-separated Fernet keys; the first encrypts, any decrypts."""
    if raw is None:
        if required:
            raise ConfigError(
                "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET without SLACK_BOT_TOKEN turn on the Slack "
                "install flow, which stores each workspace's tokens encrypted: set SIGNOFF_TOKEN_KEY "
                f"(make one with: {_MAKE_KEY})"
            )
        return None
    from cryptography.fernet import Fernet

    for i, key in enumerate(k.strip() for k in raw.split(",")):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(
                f"SIGNOFF_TOKEN_KEY: key {i + 1} is not a Fernet key (32 url-safe base64-encoded "
                f"bytes; make one with: {_MAKE_KEY})"
            ) from None
    return SecretStr(raw)


def _check_public_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(
            f"SIGNOFF_PUBLIC_URL must be an http(s) URL like https://signoff.example.com, not {url!r}"
        )


def _hosts(raw: str) -> tuple[str, ...]:
    """``SIGNOFF_ALLOWED_HOSTS``: comma-separated ``host[:port]`` values, as a browser sends them."""
    hosts = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        if not _HOST.fullmatch(host):
            raise ConfigError(
                f"SIGNOFF_ALLOWED_HOSTS: {host!r} is not a host[:port] (like signoff.example.com "
                "or localhost:8080; no scheme, path or wildcard)"
            )
    return hosts


_ON, _OFF = {"1", "true", "on", "yes"}, {"0", "false", "off", "no"}


def _deployment(get: Callable[..., str | None], database_url: str) -> dict[str, Any]:
    """``SIGNOFF_AUTO_MIGRATE`` (default: on for SQLite, off otherwise, where a deploy step runs
    ``signoff db upgrade`` once) and ``SIGNOFF_SHUTDOWN_GRACE`` (seconds)."""
    raw = (get("SIGNOFF_AUTO_MIGRATE") or "").strip().lower()
    if raw and raw not in _ON | _OFF:
        raise ConfigError(f"SIGNOFF_AUTO_MIGRATE must be on or off, not {raw!r}")
    auto = raw in _ON if raw else database_url.startswith("sqlite")
    grace_raw = get("SIGNOFF_SHUTDOWN_GRACE") or "20"
    try:
        grace = float(grace_raw)
    except ValueError:
        raise ConfigError(f"SIGNOFF_SHUTDOWN_GRACE must be a number of seconds, not {grace_raw!r}") from None
    if grace < 0:
        raise ConfigError(f"SIGNOFF_SHUTDOWN_GRACE must be 0 or more, not {grace_raw!r}")
    return {"auto_migrate": auto, "shutdown_grace_s": grace}


_LOG_FORMATS = ("auto", "json", "console")


def _telemetry(get: Callable[..., str | None]) -> dict[str, Any]:
    """``SIGNOFF_METRICS_TOKEN`` (a bearer token for ``/metrics``), ``SIGNOFF_LOG_FORMAT``
    (auto: pretty on a terminal, JSON lines otherwise) and ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    token = get("SIGNOFF_METRICS_TOKEN") or None
    if token is not None and len(token) < _MIN_TOKEN:
        raise ConfigError(
            f"SIGNOFF_METRICS_TOKEN must be at least {_MIN_TOKEN} characters (make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    log_format = (get("SIGNOFF_LOG_FORMAT") or "auto").strip().lower()
    if log_format not in _LOG_FORMATS:
        raise ConfigError(f"SIGNOFF_LOG_FORMAT must be auto, json or console, not {log_format!r}")
    endpoint = (get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip() or None
    if endpoint is not None and urlsplit(endpoint).scheme not in {"http", "https"}:
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL like http://127.0.0.1:4318, not {endpoint!r}"
        )
    return {
        "metrics_token": SecretStr(token) if token else None,
        "log_format": log_format,
        "otel_endpoint": endpoint,
    }


def shown_url(url: str) -> str:
    """A database URL for messages: its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


# "(psycopg.OperationalError) " and the like: the driver's class, in front of its message
_DRIVER_PREFIX = re.compile(r"^(?:database error: )?(?:\([\w.]+\) )?")


def database_problem(url: str, exc: Exception) -> str:
    """One line for a database that failed (unreachable, refused, ...), naming the setting."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    detail = _DRIVER_PREFIX.sub("", first).strip()
    return f"the database at SIGNOFF_DATABASE_URL={shown_url(url)} failed: {detail}"


def port_problem(host: str, port: int, exc: OSError) -> str:
    """One line for an address ``signoff serve`` cannot listen on, naming the settings."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another signoff serve?): "
            "stop that process or choose another port with SIGNOFF_PORT"
        )
    reason = exc.strerror or str(exc)
    return f"cannot listen on {host}:{port} ({reason}): check SIGNOFF_HOST and SIGNOFF_PORT"
