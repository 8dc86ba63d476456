"""Sign-in required (private): with ``SIGNOFF_AUTH``, every console page needs a signed-in person.

A middleware behind the guard (which has checked Host, origin and CSRF token, and knows the
cookie's session id). It finds who the session signs in (``_accounts.current``) and puts the
person on the request; without one, a page (GET) redirects to the sign-in page and any other
request gets a 403 page and changes nothing. The sign-in pages, ``/healthz`` and ``/static/``
are open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from bot.web import _accounts
from bot.web._views import CONTAINER, PERSON, SID, redirect, render

__all__ = ["require_login"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN = frozenset(
    {
        "web.healthz",
        "web.login",
        "web.login_start",
        "web.login_callback",
        "web.login_email",
        "web.login_link",
        "web.login_link_use",
        "web.mail_link",  # a decision link is its own authority (bot/web/_mail_links.py)
        "web.mail_decide",
        "web.static",
    }
)


def _route_name(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    return route.name or (resource.name if resource is not None else None) or ""


@web.middleware
async def require_login(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Put the signed-in person on the request; refuse console routes to everyone else."""
    name = _route_name(request)
    if not name.startswith("web.") or SID not in request:
        return await handler(request)
    found = await _accounts.current(request.app[CONTAINER], request[SID])
    if found.person is not None:
        request[PERSON] = found.person
        return await handler(request)
    if name in _OPEN:
        return await handler(request)
    if request.method in {"GET", "HEAD"}:
        query = {"next": request.path_qs, **({"expired": "1"} if found.expired else {})}
        raise redirect("/login?" + urlencode(query))
    why = "Your session has expired" if found.expired else "You are not signed in"
    return render(
        request,
        "error.html",
        status=403,
        title="Sign in first",
        message=f"{why}, so nothing was done. Sign in and send the form again.",
    )
