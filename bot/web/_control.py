"""Operator controls on the run page (private): pause, resume, rerun and retry, as the current actor.

The forms are POSTs behind the console's guard (CSRF token, origin) and its login; the engine
decides who may (the run's requester or an admin) and audits it. Refusals are shown on the run
page.
"""

from __future__ import annotations

from collections.abc import Awaitable

from aiohttp import web

from bot.web._views import CONTAINER, _run_view, actor_of, drive_soon, redirect
from engine.commands import Pause, Rerun, Resume, Retry
from engine.errors import Conflict, InvalidInput, NotAllowed
from engine.model import Run

__all__ = ["pause_run", "rerun_run", "resume_run", "retry_run"]


async def _control(request: web.Request, act: Awaitable[Run], *, drive: bool) -> web.Response:
    """Run one control; a refusal is the run page with why (403, 409 or 400), else the page of
    the run it leaves (driven in the background when ``drive``)."""
    run_id = request.match_info["run_id"]
    try:
        run = await act
    except NotAllowed as exc:
        return await _run_view(request, run_id, f"Not allowed: {exc}", 403)
    except Conflict as exc:
        return await _run_view(request, run_id, str(exc), 409)
    except InvalidInput as exc:
        details = "; ".join(exc.errors.values())
        return await _run_view(request, run_id, f"{exc}{': ' + details if details else ''}", 400)
    if drive:
        await drive_soon(request.app, run.id)
    raise redirect(f"/runs/{run.id}")


async def pause_run(request: web.Request) -> web.Response:
    """Pause a run before its next step."""
    command = Pause(run_id=request.match_info["run_id"], actor=actor_of(request), channel="web")
    return await _control(request, request.app[CONTAINER].engine.pause(command), drive=False)


async def resume_run(request: web.Request) -> web.Response:
    """Resume a paused run; it continues in the background."""
    command = Resume(run_id=request.match_info["run_id"], actor=actor_of(request), channel="web")
    return await _control(request, request.app[CONTAINER].engine.resume(command), drive=True)


async def rerun_run(request: web.Request) -> web.Response:
    """Start a rerun (from the chosen node; ``reask`` and ``latest`` as checkboxes) and show it."""
    form = await request.post()
    command = Rerun(
        run_id=request.match_info["run_id"],
        actor=actor_of(request),
        channel="web",
        from_node=str(form.get("from", "")).strip() or None,
        reask=form.get("reask") == "on",
        latest=form.get("latest") == "on",
    )
    return await _control(request, request.app[CONTAINER].engine.rerun(command), drive=True)


async def retry_run(request: web.Request) -> web.Response:
    """Run a failed run's failed steps again in place (when retryable)."""
    command = Retry(run_id=request.match_info["run_id"], actor=actor_of(request), channel="web")
    return await _control(request, request.app[CONTAINER].engine.retry(command), drive=True)
