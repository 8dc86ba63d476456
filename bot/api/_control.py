"""``/api/v1/runs/{id}/pause|resume|rerun``: operator controls over the API, as the key's
identity (its bound person, or the agent); the engine allows the run's requester or an admin."""

from __future__ import annotations

from aiohttp import web

from bot.api._deps import caller_of, deps_of
from bot.api._http import body_of, path_id
from bot.api._models import NoBody, RerunIn
from bot.api._problems import json_response
from bot.api._views import run_view
from engine.clients import Scope
from engine.commands import Pause, Rerun, Resume

__all__ = ["pause", "rerun", "resume"]


async def pause(request: web.Request) -> web.Response:
    """Pause a run before its next step; it still takes decisions."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.runs_write)
    body = await body_of(request, NoBody)
    command = Pause(run_id=path_id(request), actor=caller.identity, channel="api", reason=body.reason or "")
    run = await deps.container.engine.pause(command)
    return json_response(await run_view(deps.container.store, run))


async def resume(request: web.Request) -> web.Response:
    """Resume a paused run; it continues in the background."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.runs_write)
    await body_of(request, NoBody)
    run = await deps.container.engine.resume(
        Resume(run_id=path_id(request), actor=caller.identity, channel="api")
    )
    await deps.drive_later(run)
    return json_response(await run_view(deps.container.store, run))


async def rerun(request: web.Request) -> web.Response:
    """Start a new run linked to an ended one, reusing its steps before ``from``."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.runs_write)
    body = await body_of(request, RerunIn)
    command = Rerun(
        run_id=path_id(request),
        actor=caller.identity,
        channel="api",
        from_node=body.from_node,
        reask=body.reask,
        latest=body.latest,
    )
    run = await deps.container.engine.rerun(command)
    await deps.drive_later(run)
    return json_response(await run_view(deps.container.store, run), status=201)
