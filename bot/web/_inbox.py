"""The person's own pages (private): waiting for me, my decisions, roles and who is in them.

"Waiting for me" is ``Engine.waiting_for`` (roles, user groups, channels, pools and delegations
resolved to the person, one identity across channels), newest first, a page at a time; the
header counts it on every page. Role pages list who is in a role and the role's open
checkpoints, each with whether the person can decide it (``Engine.can_decide``: the gate's
answer, so a manager reached through a role or a delegation is told they can).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from bot.web._views import CONTAINER, COUNTS, WAITING, actor_of, cursor_of, cursor_text, render
from engine.errors import NotFound
from engine.people import actor_of as actor_id
from engine.roles import parse_principal

log = logging.getLogger("signoff.web")

__all__ = ["count_waiting", "inbox_page", "mine_page", "role_page", "roles_page"]

PAGE = 25
_COUNT_UP_TO = 99
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_UNCOUNTED = frozenset({"web.healthz", "web.static", "web.login", "web.login_callback", "web.login_link"})


@web.middleware
async def count_waiting(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Count what waits for the person, for the header of every page."""
    name = request.match_info.route.name or ""
    if request.method == "GET" and name.startswith("web.") and name not in _UNCOUNTED:
        try:
            page = await request.app[CONTAINER].engine.waiting_for(actor_of(request), limit=_COUNT_UP_TO + 1)
        except Exception:
            # a count is not worth a broken page (a directory that did not answer, say)
            log.exception("counting what waits for %s failed", actor_of(request))
        else:
            request[WAITING] = page.items
            count = len(page.items)
            request[COUNTS] = {"waiting": f"{_COUNT_UP_TO}+" if count > _COUNT_UP_TO else str(count)}
    return await handler(request)


async def inbox_page(request: web.Request) -> web.Response:
    """Open checkpoints the person can decide now, newest first, ``PAGE`` at a time."""
    c = request.app[CONTAINER]
    actor = actor_of(request)
    before = cursor_of(request.query.get("before"))
    live_after = (await c.store.audit_head())[0]  # before reading: no change falls between
    page = await c.engine.waiting_for(actor, limit=PAGE, before=before)
    following = "/inbox?" + urlencode({"before": cursor_text(page.next)}) if page.next else None
    return render(
        request,
        "inbox.html",
        checkpoints=page.items,
        following=following,
        first=before is None,
        principals=page.principals,
        live_after=live_after,
    )


async def mine_page(request: web.Request) -> web.Response:
    """The decisions the person made (under any of their identities), newest first."""
    c = request.app[CONTAINER]
    actors = sorted({actor_id(p) for p in await c.engine.gate.aliases(actor_of(request))})
    decisions = [] if c.people is None else await c.people.decisions_by(actors, limit=100)
    titles = {}
    for d in decisions:
        if d.checkpoint_id not in titles:
            cp = await c.store.get_checkpoint(d.checkpoint_id)
            titles[d.checkpoint_id] = cp.title or cp.node_id
    return render(request, "mine.html", decisions=decisions, titles=titles, actors=actors)


async def roles_page(request: web.Request) -> web.Response:
    """Every role: its members, delegates and escalation, and whether the person is in it."""
    c = request.app[CONTAINER]
    mine = set(await c.engine.principals_of(actor_of(request)))
    return render(request, "roles.html", roles=sorted(c.roles.items()), mine=mine)


async def role_page(request: web.Request) -> web.Response:
    """One role: who is in it (as named, and the people linked to each name), and its open checkpoints."""
    c = request.app[CONTAINER]
    name = request.match_info["role"]
    role = c.roles.get(name)
    if role is None:
        raise NotFound(f"there is no role {name!r} in the roles file")
    actor = actor_of(request)
    members = []
    for principal in role.members:
        kind, _ = parse_principal(principal)
        person = None if c.people is None or kind == "group" else await c.people.find_person(principal)
        members.append({"principal": principal, "person": person})
    found = await c.store.open_checkpoints_for([f"role:{name}"], limit=PAGE)
    checkpoints = [(cp, await c.engine.can_decide(cp, actor)) for cp in found]
    mine = f"role:{name}" in await c.engine.principals_of(actor)
    return render(
        request, "role.html", name=name, role=role, members=members, checkpoints=checkpoints, mine=mine
    )
