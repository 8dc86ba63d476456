"""The local web console: start runs, follow them, and decide checkpoints in a browser.

Plain server-rendered HTML (Jinja2, autoescaped) on the process's aiohttp app. Without a login
(``SIGNOFF_AUTH`` unset) the console serves local mode on a loopback address only
(``refuse_exposure``), and the acting person's name comes from a cookie; with one, people sign
in (``_login``, ``_oidc``, ``_accounts``) and act as themselves (``_auth``). Every console
request passes ``_guard`` (Host, origin, CSRF token, security headers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bot.mail import links_for
from bot.web import _audit, _charts, _decide, _guard, _inbox, _login, _mail_links, _versions, _views
from bot.web._auth import require_login
from bot.web._filters import environment
from bot.web._hosts import refuse_exposure
from bot.wiring import Container
from engine.errors import Conflict, EngineError, InvalidInput, NotAllowed, NotFound

__all__ = ["add_routes", "refuse_exposure"]

log = logging.getLogger("signoff.web")
_HERE = Path(__file__).parent
_ROUTE_PREFIX = "web."
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, container: Container, *, console: bool = True) -> None:
    """Mount the console on ``app``: pages, form targets and ``/static/`` (``/healthz`` and
    ``/readyz`` are ``bot.health``'s).

    Also installs the console's middlewares, which apply to its own routes only: ``_guard``
    (Host check, origin check, CSRF token, security headers; not on ``/healthz``), then one
    that turns an unknown id into a 404 page and any unexpected exception into a plain 500
    page with a logged error id (never a traceback).

    Args:
        app: the process's application, not yet started.
        container: the wired process (store, catalog, engine, clock, settings).
        console: mount the pages; without them none is served (Slack mode without a login:
            Slack identifies people). With ``SIGNOFF_AUTH`` the pages need a signed-in person,
            and the sign-in pages are mounted too.

    Raises:
        ConfigError: the secret key that signs console sessions is unusable.
    """
    app[_views.CONTAINER] = container
    app[_views.JINJA] = environment()
    app[_views.TASKS] = set()
    app.on_cleanup.append(_views.stop_tasks)
    login = console and container.settings.login.enabled
    links = links_for(container)  # the email channel's decision links (SMTP configured)
    if console or links is not None:
        _guard.install(app, container.settings)
    if login:
        _login.install(app, container)
        app.middlewares.append(require_login)
    if console:
        app.middlewares.append(_inbox.count_waiting)
    app.middlewares.append(_errors)
    routes: list[tuple[str, str, _Handler, str]] = [
        ("GET", "/", _views.home, "home"),
        ("POST", "/actor", _views.set_actor, "actor"),
        ("GET", "/workflows/{workflow_id}", _views.workflow_page, "workflow"),
        ("POST", "/workflows/{workflow_id}/runs", _views.start_run, "start"),
        ("GET", "/workflows/{workflow_id}/diff", _versions.diff_page, "workflow_diff"),
        ("GET", "/runs", _views.runs_page, "runs"),
        ("GET", "/stats", _views.stats_page, "stats"),
        ("GET", "/stats/charts/{chart}", _charts.chart_data, "charts"),
        ("GET", "/inbox", _inbox.inbox_page, "inbox"),
        ("GET", "/mine", _inbox.mine_page, "mine"),
        ("GET", "/roles", _inbox.roles_page, "roles"),
        ("GET", "/roles/{role}", _inbox.role_page, "role"),
        ("GET", "/runs/{run_id}", _views.run_page, "run"),
        ("GET", "/runs/{run_id}/audit", _audit.run_audit_page, "run_audit"),
        ("GET", "/audit", _audit.audit_page, "audit"),
        ("POST", "/runs/{run_id}/cancel", _views.cancel_run, "cancel"),
        ("GET", "/checkpoints/{checkpoint_id}", _decide.checkpoint_page, "checkpoint"),
        ("POST", "/checkpoints/{checkpoint_id}/decide", _decide.decide, "decide"),
    ]
    if login:
        routes += [
            ("GET", "/login", _login.login_page, "login"),
            ("POST", "/login/email", _login.email_request, "login_email"),
            ("GET", "/login/callback", _login.callback, "login_callback"),
            ("GET", "/login/email/{token}", _login.link_page, "login_link"),
            ("POST", "/login/email/{token}", _login.link_use, "login_link_use"),
            ("POST", "/login/{provider}", _login.begin, "login_start"),
            ("POST", "/logout", _login.logout, "logout"),
        ]
    if links is not None:
        app[_mail_links.MAIL_LINKS] = links
        app.router.add_get("/mail/decide/{token}", _mail_links.link_page, name=_ROUTE_PREFIX + "mail_link")
        app.router.add_post(
            "/mail/decide/{token}", _mail_links.link_decide, name=_ROUTE_PREFIX + "mail_decide"
        )
    for method, path, handler, name in routes if console else []:
        app.router.add_route(method, path, handler, name=_ROUTE_PREFIX + name)
    if console or links is not None:
        app.router.add_static("/static/", _HERE / "static", name=_ROUTE_PREFIX + "static")


def _ours(request: web.Request) -> bool:
    route: web.AbstractRoute | None = request.match_info.route  # None for a mounted ASGI app (/mcp)
    return bool(route is not None and route.name and route.name.startswith(_ROUTE_PREFIX))


def _page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return _views.render(request, "error.html", status=status, title=title, message=message)


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    if not _ours(request):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except NotFound as exc:
        return _page(request, 404, "Not found", str(exc))
    except (InvalidInput, NotAllowed, Conflict) as exc:
        status = 400 if isinstance(exc, InvalidInput) else 403 if isinstance(exc, NotAllowed) else 409
        return _page(request, status, "Could not do that", str(exc))
    except EngineError as exc:
        return _page(request, 400, "Could not do that", str(exc))
    except Exception:
        error_id = request.app[_views.CONTAINER].ids.new("err_")
        log.exception("web console error %s on %s %s", error_id, request.method, request.path)
        message = f"Something went wrong on our side. The error id {error_id} is in the server log."
        return web.Response(text=message, status=500, content_type="text/plain")
