"""Which names the console answers to, and where it may listen (private).

A page whose DNS name is switched to 127.0.0.1 after it loaded (DNS rebinding) reaches a
loopback-only server from the person's own browser, with the attacker's name in ``Host``.
The console therefore answers only to the names it is known by: the loopback names on the port
the request came in on, the host of ``SIGNOFF_PUBLIC_URL``, and ``SIGNOFF_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from bot.config import ConfigError, Settings

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refuse_exposure(settings: Settings) -> None:
    """Stop the configurations that would serve the login-less console to others (none does
    when people sign in: ``SIGNOFF_AUTH``).

    Raises:
        ConfigError: one line naming the setting and what to do instead.
    """
    if settings.login.enabled:
        return  # people sign in (SIGNOFF_AUTH): the console may listen anywhere, in any mode
    if settings.slack_enabled:
        if settings.web_console:
            raise ConfigError(
                "SIGNOFF_WEB_CONSOLE=on is refused in Slack mode: the web console needs a login "
                "(SIGNOFF_AUTH), without one anyone who reaches it could read every run; set "
                "SIGNOFF_AUTH, or unset SIGNOFF_WEB_CONSOLE and decide in Slack"
            )
        return
    if not is_loopback(settings.host):
        raise ConfigError(
            f"SIGNOFF_HOST={settings.host or '(empty: every address)'} is refused in local mode: "
            "the web console has no login (SIGNOFF_AUTH), so it may listen only on this machine; "
            "set SIGNOFF_HOST=127.0.0.1 (or ::1) and reach it from elsewhere through an SSH tunnel, "
            "or set SIGNOFF_AUTH"
        )


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _with_port(host: str, port: int, scheme: str = "http") -> set[str]:
    # a browser leaves the port out of Host when it is the scheme's default
    names = {f"{host}:{port}"}
    if port == _DEFAULT_PORTS.get(scheme):
        names.add(host)
    return names


def allowed_hosts(settings: Settings, port: int) -> frozenset[str]:
    """Every ``Host`` value (lower case) the console answers to on ``port``."""
    names: set[str] = set()
    loopback = {*_LOOPBACK_NAMES, _bracketed(settings.host.lower())} if is_loopback(settings.host) else set()
    for host in loopback or _LOOPBACK_NAMES:
        names |= _with_port(host, port)
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        if parts.hostname:
            scheme = parts.scheme or "http"
            public_port = parts.port or _DEFAULT_PORTS.get(scheme, 80)
            names |= _with_port(_bracketed(parts.hostname.lower()), public_port, scheme)
    names |= set(settings.allowed_hosts)
    return frozenset(names)


def local_port(request: web.Request, fallback: int) -> int:
    """The port the request arrived on (the configured one when the socket does not say)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2 and isinstance(sockname[1], int):
        return sockname[1]
    return fallback
