"""Operator controls on the run page (private): pause and resume, as the current actor.

The forms are POSTs behind the console's guard (CSRF token, origin) and its login; the engine
decides who may (the run's requester or an admin) and audits it. Refusals are shown on the run
page.
"""

from __future__ import annotations

from aiohttp import web

from bot.web._views import CONTAINER, _run_view, actor_of, drive_soon, redirect
from engine.commands import Pause, Resume
from engine.errors import Conflict, NotAllowed

__all__ = ["pause_run", "resume_run"]


async def pause_run(request: web.Request) -> web.Response:
    """Pause a run before its next step."""
    run_id = request.match_info["run_id"]
    engine = request.app[CONTAINER].engine
    try:
        await engine.pause(Pause(run_id=run_id, actor=actor_of(request), channel="web"))
    except NotAllowed as exc:
        return await _run_view(request, run_id, f"Not allowed: {exc}", 403)
    except Conflict as exc:
        return await _run_view(request, run_id, str(exc), 409)
    raise redirect(f"/runs/{run_id}")


async def resume_run(request: web.Request) -> web.Response:
    """Resume a paused run; it continues in the background."""
    run_id = request.match_info["run_id"]
    engine = request.app[CONTAINER].engine
    try:
        await engine.resume(Resume(run_id=run_id, actor=actor_of(request), channel="web"))
    except NotAllowed as exc:
        return await _run_view(request, run_id, f"Not allowed: {exc}", 403)
    except Conflict as exc:
        return await _run_view(request, run_id, str(exc), 409)
    await drive_soon(request.app, run_id)
    raise redirect(f"/runs/{run_id}")
