"""Sign-in and sign-out pages (private): OpenID Connect providers and emailed login links.

- ``POST /login/{provider}`` starts an OpenID Connect sign-in: a pending login (``state``,
  ``nonce``, PKCE verifier, the page to return to, and this browser's session) is stored as a
  single-use token, and the browser goes to the provider.
- ``GET /login/callback`` uses that token once (a replayed callback finds it used), checks it was
  started by this browser, lets the provider's ID token be checked (``_oidc``), then signs in.
- ``POST /login/email`` mails a login link to a person who may sign in. ``GET`` of the link only
  shows a page with a button (mail scanners fetch links); its ``POST`` uses the link, once.
- Signing in and out replace the cookie's session id (no fixation; old CSRF tokens die).
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from aiohttp import web
from itsdangerous import BadData, URLSafeTimedSerializer

from bot.web import _accounts
from bot.web._guard import GUARD
from bot.web._mail import MailFailed, send_login_link
from bot.web._oidc import Begun, Login, Provider, refused
from bot.web._views import CONTAINER, NEW_SID, PERSON, SID, local_path, redirect, render
from bot.wiring import Container
from engine.errors import NotAllowed
from engine.people import LoginToken, PeopleStore, email_identity

__all__ = ["LOGIN", "LoginKit", "install"]

_PENDING_TTL = timedelta(minutes=10)


_LINKS_PER_ADDRESS = 5  # login links mailed to one address per SIGNOFF_LOGIN_LINK_TTL (per process)


@dataclass
class LoginKit:
    """The configured providers, the signer of login links, and when links were last asked for."""

    providers: dict[str, Provider]
    links: URLSafeTimedSerializer
    asked: dict[str, deque[datetime]] = field(default_factory=dict)

    def too_many(self, address: str, now: datetime, window: timedelta) -> bool:
        """Count a request for a link to ``address``; True when it is one too many for now."""
        recent = self.asked.setdefault(address, deque())
        while recent and recent[0] <= now - window:
            recent.popleft()
        if len(recent) >= _LINKS_PER_ADDRESS:
            return True
        recent.append(now)
        return False


LOGIN = web.AppKey("signoff.web.login", LoginKit)


def install(app: web.Application, container: Container) -> None:
    """Set up the providers of ``SIGNOFF_AUTH`` (call after the guard is installed)."""
    login = container.settings.login
    providers = {
        name: Provider(name, client)
        for name, client in (("slack", login.slack), ("oidc", login.oidc))
        if client
    }
    app[LOGIN] = LoginKit(providers, app[GUARD].sessions.serializer("signoff.login.email"))


def _next(raw: object) -> str:
    """Only a local path: the form must not bounce a browser to another site."""
    return local_path(raw)


def _refused(request: web.Request, message: str, status: int = 403) -> web.Response:
    return _page(request, status=status, error=f"Sign-in refused: {message}")


def _page(
    request: web.Request, *, status: int = 200, error: str = "", notice: str = "", email: str = ""
) -> web.Response:
    kit = request.app[LOGIN]
    return render(
        request,
        "login.html",
        status=status,
        providers=list(kit.providers.values()),
        email_login="email" in request.app[CONTAINER].settings.login.providers,
        next=_next(request.query.get("next")),
        error=error,
        notice=notice,
        email=email,
    )


async def login_page(request: web.Request) -> web.Response:
    """The sign-in choices (and why the last session ended, when it expired)."""
    notice = (
        "Your session has expired; sign in again."
        if request.query.get("expired")
        else "You are signed out."
        if request.query.get("out")
        else ""
    )
    return _page(request, notice=notice)


async def begin(request: web.Request) -> web.Response:
    """Start an OpenID Connect sign-in with ``{provider}``."""
    c = request.app[CONTAINER]
    provider = request.app[LOGIN].providers.get(request.match_info["provider"])
    if provider is None:
        return _refused(request, "this console does not sign in with that provider", 404)
    form = await request.post()
    try:
        begun = await provider.begin(_callback_url(c))
    except NotAllowed as exc:
        return _refused(request, str(exc), 502)
    now = c.clock.now()
    pending = LoginToken(
        id=_accounts.hashed(begun.state),
        kind="oidc",
        data={
            "provider": provider.name,
            "nonce": begun.nonce,
            "verifier": begun.verifier,
            "next": _next(form.get("next")),
            "browser": _accounts.hashed(request[SID]),
        },
        created_at=now,
        expires_at=now + _PENDING_TTL,
    )
    await _people(c).add_login_token(pending)
    raise redirect(begun.url)


async def callback(request: web.Request) -> web.Response:
    """The provider sends the browser back here with ``code`` and ``state``."""
    c = request.app[CONTAINER]
    if "error" in request.query:
        why = request.query.get("error_description") or request.query["error"]
        return _refused(request, f"the provider did not sign you in ({why[:200]})")
    state, code = request.query.get("state", ""), request.query.get("code", "")
    if not state or not code:
        return _refused(request, "the provider's answer lacks its code or state; start again", 400)
    pending = await _people(c).use_login_token(_accounts.hashed(state), c.clock.now())
    if pending is None or pending.kind != "oidc":
        return _refused(
            request, "this sign-in was already used, has expired, or was never started here; start again"
        )
    data = pending.data
    if data.get("browser") != _accounts.hashed(request[SID]):
        return _refused(request, "this sign-in was started in another browser; start it again here")
    provider = request.app[LOGIN].providers.get(str(data.get("provider")))
    if provider is None:
        return _refused(request, "this console no longer signs in with that provider")
    begun = Begun(url="", state=state, nonce=str(data["nonce"]), verifier=str(data["verifier"]))
    try:
        login = await provider.finish(code, _callback_url(c), begun, await _slack_teams(c))
    except NotAllowed as exc:
        return _refused(request, str(exc))
    return await _sign_in(request, login, str(data.get("next", "/")))


async def _slack_teams(c: Container) -> frozenset[str]:
    """The workspaces whose members may sign in with Slack: the one of ``SLACK_BOT_TOKEN``, or
    the workspaces that installed Signoff among those allowed to (``SIGNOFF_SLACK_TEAMS``)."""
    if c.engine.gate.team is not None:
        return frozenset({c.engine.gate.team})
    if c.installations is None or not c.settings.slack_multi:
        return frozenset()
    installed = {i.team_id for i in await c.installations.list_installations()}
    return frozenset(installed & c.settings.slack_teams)


async def _sign_in(request: web.Request, login: Login, back: str) -> web.Response:
    c = request.app[CONTAINER]
    try:
        person = await _accounts.admit(c, login)
    except NotAllowed as exc:
        return _refused(request, str(exc))
    sid = request.app[GUARD].sessions.new_id()
    await _accounts.start(c, person, login.provider, sid)
    request[NEW_SID] = sid
    raise redirect(_next(back))


# ------------------------------------------------------------------ email links


async def email_request(request: web.Request) -> web.Response:
    """Mail a login link to the address typed, when it may sign in."""
    c = request.app[CONTAINER]
    if c.settings.login.smtp is None or "email" not in c.settings.login.providers:
        return _refused(request, "this console does not sign in by email", 404)
    form = await request.post()
    typed = str(form.get("email", "")).strip()
    try:
        identity = email_identity(typed)
    except ValueError:
        return _page(request, status=400, error=f"{typed or 'That'} is not an email address.", email=typed)
    sent = (
        "If this address may sign in here, a sign-in link is on its way to it. "
        "It works once, for a few minutes."
    )
    now, ttl = c.clock.now(), c.settings.login.link_ttl
    # counted before anything says whether the address is known, so the answer tells nothing more
    if request.app[LOGIN].too_many(identity, now, ttl):
        message = (
            "Several sign-in links were sent to this address just now; use the newest, or wait a few minutes."
        )
        return _page(request, status=429, error=message, email=typed)
    if not await _accounts.may_sign_in(c, [identity]):
        return _page(request, notice=sent)
    secret = secrets.token_urlsafe(24)
    token = LoginToken(
        id=_accounts.hashed(secret),
        kind="email",
        data={"email": identity, "next": _next(form.get("next"))},
        created_at=now,
        expires_at=now + ttl,
    )
    await _people(c).add_login_token(token)
    link = f"{str(c.settings.public_url).rstrip('/')}/login/email/{request.app[LOGIN].links.dumps(secret)}"
    try:
        await send_login_link(c.settings.login.smtp, identity.removeprefix("email:"), link, ttl)
    except MailFailed as exc:
        return _page(request, status=503, error=str(exc), email=typed)
    return _page(request, notice=sent)


def _link_secret(request: web.Request) -> str | None:
    kit = request.app[LOGIN]
    max_age = int(request.app[CONTAINER].settings.login.link_ttl.total_seconds())
    try:
        secret = kit.links.loads(request.match_info["token"], max_age=max_age)
    except BadData:
        return None
    return secret if isinstance(secret, str) else None


_BAD_LINK = "this sign-in link is not valid, has expired or was already used; ask for a new one"


async def link_page(request: web.Request) -> web.Response:
    """A login link opened: a page with a button. Nothing is used or signed in by a GET."""
    if _link_secret(request) is None:
        return _refused(request, _BAD_LINK, 400)
    return render(request, "login_link.html", action=request.path)


async def link_use(request: web.Request) -> web.Response:
    """The button of a login link's page: use the link (once) and sign in."""
    c = request.app[CONTAINER]
    secret = _link_secret(request)
    token = (
        None if secret is None else await _people(c).use_login_token(_accounts.hashed(secret), c.clock.now())
    )
    if token is None or token.kind != "email":
        return _refused(request, _BAD_LINK, 400)
    login = Login(provider="email", identities=[str(token.data["email"])])
    return await _sign_in(request, login, str(token.data.get("next", "/")))


# ------------------------------------------------------------------ sign out


async def logout(request: web.Request) -> web.Response:
    """End the session and start a fresh anonymous one."""
    c = request.app[CONTAINER]
    person = request.get(PERSON)
    if person is not None:
        await _accounts.end(c, request[SID], person)
    request[NEW_SID] = request.app[GUARD].sessions.new_id()
    raise redirect("/login?" + urlencode({"out": "1"}))


def _callback_url(c: Container) -> str:
    return f"{str(c.settings.public_url).rstrip('/')}/login/callback"


def _people(c: Container) -> PeopleStore:
    if c.people is None:
        raise refused("this deployment's store keeps no people, so nobody can sign in")
    return c.people
