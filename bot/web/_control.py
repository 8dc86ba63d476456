"""Operator controls on the run page (private): pause, resume and rerun, as the current actor.

The forms are POSTs behind the console's guard (CSRF token, origin) and its login; the engine
decides who may (the run's requester or an admin) and audits it. Refusals are shown on the run
page.
"""

from __future__ import annotations

from aiohttp import web

from bot.web._views import CONTAINER, _run_view, actor_of, drive_soon, redirect
from engine.commands import Pause, Rerun, Resume, Retry
from engine.errors import Conflict, InvalidInput, NotAllowed

__all__ = ["pause_run", "rerun_run", "resume_run", "retry_run"]


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


async def rerun_run(request: web.Request) -> web.Response:
    """Start a rerun (from the chosen node; ``reask`` and ``latest`` as checkboxes) and show it."""
    run_id = request.match_info["run_id"]
    form = await request.post()
    engine = request.app[CONTAINER].engine
    command = Rerun(
        run_id=run_id,
        actor=actor_of(request),
        channel="web",
        from_node=str(form.get("from", "")).strip() or None,
        reask=form.get("reask") == "on",
        latest=form.get("latest") == "on",
    )
    try:
        new = await engine.rerun(command)
    except NotAllowed as exc:
        return await _run_view(request, run_id, f"Not allowed: {exc}", 403)
    except Conflict as exc:
        return await _run_view(request, run_id, str(exc), 409)
    except InvalidInput as exc:
        details = "; ".join(exc.errors.values())
        return await _run_view(request, run_id, f"{exc}{': ' + details if details else ''}", 400)
    await drive_soon(request.app, new.id)
    raise redirect(f"/runs/{new.id}")


async def retry_run(request: web.Request) -> web.Response:
    """Run a failed run's failed steps again in place (when retryable)."""
    run_id = request.match_info["run_id"]
    engine = request.app[CONTAINER].engine
    try:
        await engine.retry(Retry(run_id=run_id, actor=actor_of(request), channel="web"))
    except NotAllowed as exc:
        return await _run_view(request, run_id, f"Not allowed: {exc}", 403)
    except Conflict as exc:
        return await _run_view(request, run_id, str(exc), 409)
    await drive_soon(request.app, run_id)
    raise redirect(f"/runs/{run_id}")
