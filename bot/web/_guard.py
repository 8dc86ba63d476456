"""The console's edge (private): Host check, origin check, CSRF token, security headers.

One middleware in front of every console route except ``/healthz`` (which tells only that the
process is up), and of requests that match no route. Slack's endpoint has its own signature
check and is left alone.

- ``Host`` must be one of ``_hosts.allowed_hosts``, else 400: this defeats DNS rebinding.
- A POST must not come from another origin: ``Origin: null`` and foreign origins (or, without
  ``Origin``, a foreign ``Referer``) get 403.
- A POST must carry the CSRF token of the session its cookie names, else 403.
- Every answer forbids framing, sniffing and cross-site referrers, and allows no inline script
  or style (``Content-Security-Policy``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from bot.config import Settings
from bot.web import _views
from bot.web._hosts import allowed_hosts, local_port
from bot.web._session import CSRF_FIELD, Sessions, load_secret

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_OPEN_ROUTES = frozenset({"web.healthz"})


@dataclass(frozen=True)
class Guard:
    """What the middleware needs: the settings (hosts) and the session signer."""

    settings: Settings
    sessions: Sessions


GUARD = web.AppKey("signoff.web.guard", Guard)


def install(app: web.Application, settings: Settings) -> None:
    """Load the secret and put the middleware in front of the console's own error handling.

    Raises:
        ConfigError: the secret key is unusable (see ``_session.load_secret``).
    """
    secure = bool(settings.public_url and settings.public_url.startswith("https://"))
    samesite = "Lax" if settings.login.enabled else "Strict"
    app[GUARD] = Guard(settings, Sessions(load_secret(settings), secure=secure, samesite=samesite))
    app.middlewares.append(guard)


def _guarded(request: web.Request) -> bool:
    match = request.match_info
    if match.http_exception is not None:
        return True
    name = match.route.name or ""
    return name.startswith("web.") and name not in _OPEN_ROUTES


@web.middleware
async def guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Refuse foreign hosts, cross-site and token-less POSTs; add the security headers."""
    if not _guarded(request):
        return await handler(request)
    g = request.app[GUARD]
    hosts = allowed_hosts(g.settings, local_port(request, g.settings.port))
    host = request.headers.get("Host", "").lower()
    if host not in hosts:
        return _secured(web.Response(status=400, text=_wrong_host(host), content_type="text/plain"))
    sid, renew = g.sessions.read(request)
    fresh = sid is None
    sid = sid or g.sessions.new_id()
    request[_views.SID] = sid
    request[_views.CSRF_TOKEN] = g.sessions.token(sid)
    try:
        response = await _checked(request, handler, g.sessions, hosts, sid, fresh=fresh)
    except web.HTTPException as exc:
        # redirects and aiohttp's own errors are raised, and get the same treatment
        _finish(
            exc,
            g.sessions,
            request.get(_views.NEW_SID, sid),
            issue=fresh or renew or _views.NEW_SID in request,
        )
        raise
    _finish(
        response,
        g.sessions,
        request.get(_views.NEW_SID, sid),
        issue=fresh or renew or _views.NEW_SID in request,
    )
    return response


async def _checked(
    request: web.Request,
    handler: _Handler,
    sessions: Sessions,
    hosts: frozenset[str],
    sid: str,
    *,
    fresh: bool,
) -> web.StreamResponse:
    if request.method not in _SAFE_METHODS:
        problem = _origin_problem(request, hosts) or await _token_problem(request, sessions, sid, fresh=fresh)
        if problem:
            return _views.render(request, "error.html", status=403, title="Refused", message=problem)
    return await handler(request)


def _wrong_host(host: str) -> str:
    return (
        f"Refused: this console does not answer to the name {host or '(none)'!r}. Open it as "
        "http://127.0.0.1:PORT or http://localhost:PORT; a deployment reached under another "
        "name lists it in SIGNOFF_PUBLIC_URL or SIGNOFF_ALLOWED_HOSTS.\n"
    )


def _origin_problem(request: web.Request, hosts: frozenset[str]) -> str | None:
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin.strip().lower() == "null":
            return (
                "This form was sent from a page without an origin (a sandboxed frame, a local "
                "file or a cross-site redirect), so it was refused. Open the console and send it from there."
            )
        if urlsplit(origin).netloc.lower() not in hosts:
            return f"This form was sent from another site ({origin}), so it was refused."
        return None
    referer = request.headers.get("Referer")
    if referer and urlsplit(referer).netloc.lower() not in hosts:
        return "This form was sent from another site, so it was refused."
    return None


async def _token_problem(request: web.Request, sessions: Sessions, sid: str, *, fresh: bool) -> str | None:
    if fresh:
        return (
            "Your console session is missing or has expired (are cookies blocked?), so nothing "
            "was done. Reload the page and send the form again."
        )
    token = (await request.post()).get(CSRF_FIELD)
    if not isinstance(token, str) or not sessions.token_ok(sid, token):
        return (
            "This form's security token is missing or belongs to another session, so nothing "
            "was done. Reload the page and send the form again."
        )
    return None


def _secured(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.update(SECURITY_HEADERS)
    if response.content_type == "text/html":
        # pages carry a session's token and what a person decides on: keep them out of caches
        response.headers["Cache-Control"] = "no-store"
    return response


def _finish(response: web.StreamResponse, sessions: Sessions, sid: str, *, issue: bool) -> None:
    _secured(response)
    if issue:
        sessions.set_cookie(response, sid)
