"""Console login settings: which providers sign people in, SMTP for login links, session lifetimes.

``SIGNOFF_AUTH`` (comma-separated ``oidc``, ``slack``, ``email``) turns the login on; unset, the
console has no login and serves this machine only. ``read_login`` raises ``ValueError`` naming
the variable; ``bot.config`` turns it into a ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from engine.model import parse_duration

__all__ = [
    "PROVIDERS",
    "VARIABLES",
    "LoginSettings",
    "OidcClient",
    "SmtpSettings",
    "read_login",
]

PROVIDERS = ("oidc", "slack", "email")

VARIABLES = (
    "SIGNOFF_AUTH",
    "SIGNOFF_AUTH_DOMAINS",
    "SIGNOFF_DECISION_CODE",
    "SIGNOFF_DECISION_LINK_TTL",
    "SIGNOFF_LOGIN_LINK_TTL",
    "SIGNOFF_OIDC_CLIENT_ID",
    "SIGNOFF_OIDC_CLIENT_SECRET",
    "SIGNOFF_OIDC_ISSUER",
    "SIGNOFF_OIDC_NAME",
    "SIGNOFF_SESSION_IDLE",
    "SIGNOFF_SESSION_MAX",
    "SIGNOFF_SLACK_OIDC_URL",
    "SIGNOFF_SMTP_FROM",
    "SIGNOFF_SMTP_HOST",
    "SIGNOFF_SMTP_PASSWORD",
    "SIGNOFF_SMTP_PORT",
    "SIGNOFF_SMTP_STARTTLS",
    "SIGNOFF_SMTP_USER",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
)
"""Every environment variable the console sign-in reads (``signoff doctor`` lists them)."""

_ON = {"1", "true", "on", "yes"}


class OidcClient(BaseModel):
    """One OpenID Connect client: where the provider is and this app's credentials there."""

    model_config = ConfigDict(frozen=True)

    discovery_url: str
    client_id: str
    client_secret: SecretStr
    label: str


class SmtpSettings(BaseModel):
    """Where login links and checkpoint mail are sent from (``bot/mail``)."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = 587
    sender: str
    starttls: bool = True
    user: str | None = None
    password: SecretStr | None = None


class LoginSettings(BaseModel):
    """Every login setting; ``providers`` empty means no login."""

    model_config = ConfigDict(frozen=True)

    providers: tuple[str, ...] = ()
    oidc: OidcClient | None = None
    slack: OidcClient | None = None
    smtp: SmtpSettings | None = None
    domains: tuple[str, ...] = ()
    idle: timedelta = timedelta(hours=1)
    absolute: timedelta = timedelta(hours=12)
    link_ttl: timedelta = timedelta(minutes=15)
    # how long a decision link mailed with a checkpoint works (``bot/mail``)
    decision_link_ttl: timedelta = timedelta(days=3)
    # which checkpoints' mail also carries a one-time code the page asks for: off, high (high and
    # urgent) or urgent
    decision_code: str = "high"

    @property
    def enabled(self) -> bool:
        """True when the console requires people to sign in."""
        return bool(self.providers)


def _duration(get: Callable[[str], str | None], name: str, default: str) -> timedelta:
    raw = get(name) or default
    try:
        value = parse_duration(raw)
    except ValueError:
        raise ValueError(f"{name} must be a duration like 30m, 8h or 7d, not {raw!r}") from None
    if value <= timedelta(0):
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return value


def _required(get: Callable[[str], str | None], provider: str, *names: str) -> list[str]:
    missing = [n for n in names if not get(n)]
    if missing:
        raise ValueError(f"SIGNOFF_AUTH={provider} needs {', '.join(missing)}")
    return [str(get(n)) for n in names]


def _oidc(get: Callable[[str], str | None]) -> OidcClient:
    issuer, client_id, secret = _required(
        get, "oidc", "SIGNOFF_OIDC_ISSUER", "SIGNOFF_OIDC_CLIENT_ID", "SIGNOFF_OIDC_CLIENT_SECRET"
    )
    if urlsplit(issuer).scheme not in {"http", "https"}:
        raise ValueError(f"SIGNOFF_OIDC_ISSUER must be the provider's https URL, not {issuer!r}")
    return OidcClient(
        discovery_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_id=client_id,
        client_secret=SecretStr(secret),
        label=get("SIGNOFF_OIDC_NAME") or "single sign-on",
    )


def _slack(get: Callable[[str], str | None], slack_mode: bool) -> OidcClient:
    client_id, secret = _required(get, "slack", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
    if not slack_mode:
        raise ValueError(
            "SIGNOFF_AUTH=slack needs Slack mode (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET): "
            "Sign in with Slack admits the members of the workspace Signoff is installed in"
        )
    base = (get("SIGNOFF_SLACK_OIDC_URL") or "https://slack.com").rstrip("/")
    return OidcClient(
        discovery_url=base + "/.well-known/openid-configuration",
        client_id=client_id,
        client_secret=SecretStr(secret),
        label="Slack",
    )


def _smtp(get: Callable[[str], str | None], public_url: str | None, *, login: bool) -> SmtpSettings:
    if not login and not get("SIGNOFF_SMTP_FROM"):
        raise ValueError("SIGNOFF_SMTP_HOST is set but SIGNOFF_SMTP_FROM is not: mail needs a sender address")
    host, sender = _required(get, "email", "SIGNOFF_SMTP_HOST", "SIGNOFF_SMTP_FROM")
    if not public_url:
        raise ValueError(
            "SIGNOFF_AUTH=email needs SIGNOFF_PUBLIC_URL: login links point there"
            if login
            else "SIGNOFF_SMTP_HOST needs SIGNOFF_PUBLIC_URL: decision links in checkpoint mail point there"
        )
    port_raw = get("SIGNOFF_SMTP_PORT") or "587"
    if not port_raw.isdigit() or not 0 < int(port_raw) < 65536:
        raise ValueError(f"SIGNOFF_SMTP_PORT must be a port number, not {port_raw!r}")
    password = get("SIGNOFF_SMTP_PASSWORD")
    return SmtpSettings(
        host=host,
        port=int(port_raw),
        sender=sender,
        starttls=(get("SIGNOFF_SMTP_STARTTLS") or "on").lower() in _ON,
        user=get("SIGNOFF_SMTP_USER") or None,
        password=SecretStr(password) if password else None,
    )


def read_login(
    get: Callable[[str], str | None], *, slack_mode: bool, public_url: str | None
) -> LoginSettings:
    """The login settings from the environment.

    Raises:
        ValueError: naming the variable that is wrong or missing.
    """
    raw = get("SIGNOFF_AUTH") or ""
    providers = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
    unknown = [p for p in providers if p not in PROVIDERS]
    if unknown:
        raise ValueError(f"SIGNOFF_AUTH must list oidc, slack or email (comma-separated), not {raw!r}")
    if providers and not public_url:
        raise ValueError(
            "SIGNOFF_AUTH needs SIGNOFF_PUBLIC_URL (like https://signoff.example.com): providers send "
            "people back there, and login links point there"
        )
    idle = _duration(get, "SIGNOFF_SESSION_IDLE", "1h")
    absolute = _duration(get, "SIGNOFF_SESSION_MAX", "12h")
    if idle > absolute:
        raise ValueError("SIGNOFF_SESSION_IDLE must not be longer than SIGNOFF_SESSION_MAX")
    domains = tuple(
        d.strip().lower().lstrip("@") for d in (get("SIGNOFF_AUTH_DOMAINS") or "").split(",") if d.strip()
    )
    return LoginSettings(
        providers=providers,
        oidc=_oidc(get) if "oidc" in providers else None,
        slack=_slack(get, slack_mode) if "slack" in providers else None,
        # SMTP alone (without email sign-in) turns on the email channel for checkpoints
        smtp=_smtp(get, public_url, login="email" in providers)
        if "email" in providers or get("SIGNOFF_SMTP_HOST")
        else None,
        domains=domains,
        idle=idle,
        absolute=absolute,
        link_ttl=_duration(get, "SIGNOFF_LOGIN_LINK_TTL", "15m"),
        decision_link_ttl=_duration(get, "SIGNOFF_DECISION_LINK_TTL", "3d"),
        decision_code=_code(get),
    )


def _code(get: Callable[[str], str | None]) -> str:
    raw = (get("SIGNOFF_DECISION_CODE") or "high").strip().lower()
    if raw not in {"off", "high", "urgent"}:
        raise ValueError(f"SIGNOFF_DECISION_CODE must be off, high or urgent, not {raw!r}")
    return raw
