"""``/api/v1/runs``: start workflows from the catalog, read them, wait for them, cancel them."""

from __future__ import annotations

from aiohttp import web

from bot.api._deps import caller_of, deps_of
from bot.api._http import body_of, path_id, query_of
from bot.api._idempotency import REPLAYED, claim, idempotency_key, request_hash
from bot.api._models import NoBody, RunCreate, RunList, RunPage, WaitQuery
from bot.api._paging import cursor_of, next_cursor
from bot.api._problems import ApiError, json_response
from bot.api._views import run_result, run_view
from engine.agents import asks_requester
from engine.clients import Scope
from engine.commands import Cancel
from engine.errors import Conflict, InvalidInput, NotFound
from engine.model import Run, RunStatus

__all__ = ["cancel", "create", "get", "listing", "result"]


async def create(request: web.Request) -> web.Response:
    """Start a run of a catalog workflow (idempotent by key); it runs in the background."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.runs_write)
    body = await body_of(request, RunCreate)
    key = idempotency_key(request, body.key)
    c = deps.container
    try:
        workflow = c.catalog.get(body.workflow)
    except NotFound as exc:
        raise ApiError(400, "validation_failed", str(exc), errors={"workflow": str(exc)}) from None
    asking = asks_requester(workflow)
    if caller.person is None and asking:
        raise ApiError(
            400,
            "validation_failed",
            f"'{workflow.id}' asks its requester ({', '.join(asking)}), and an agent cannot answer: "
            "start it with a key bound to a person (--as-user)",
            errors={"workflow": "asks its requester"},
        )
    try:
        inputs = c.engine.check_inputs(workflow, body.inputs)
    except InvalidInput as exc:
        errors = {f"inputs.{k}" if k else "inputs": v for k, v in exc.errors.items()}
        raise ApiError(400, "validation_failed", str(exc), errors=errors) from None
    claimed = await claim(
        deps.clients, caller, key, request_hash(body), "run", c.ids.new("run_"), c.clock.now()
    )
    origin = {
        "channel": "api",
        "client": caller.key.id,
        "client_name": caller.key.name,
        "idempotency_key": key,
        "callback_url": str(body.callback_url) if body.callback_url else None,
    }
    try:
        run = await c.engine.start_pinned(
            workflow, inputs, requester=caller.identity, origin=origin, run_id=claimed.resource_id
        )
    except Conflict:
        run = await c.store.get_run(claimed.resource_id)
    else:
        await deps.drive_later(run)
    headers = {REPLAYED: "true"} if claimed.replay else {}
    return json_response(await run_view(c.store, run), 200 if claimed.replay else 201, headers)


async def get(request: web.Request) -> web.Response:
    """One run."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.runs_read)
    store = deps.container.store
    return json_response(await run_view(store, await store.get_run(path_id(request))))


async def result(request: web.Request) -> web.Response:
    """The run's result once it ended (200), or the run (202) after waiting up to ``wait`` s."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.runs_read)
    query = query_of(request, WaitQuery)
    store = deps.container.store
    run = await store.get_run(path_id(request))

    async def ended() -> Run | None:
        current = await store.get_run(run.id)
        return current if current.status.final else None

    done = await deps.waiters.until(run.id, ended, query.wait)
    if done is None:
        return json_response(await run_view(store, await store.get_run(run.id)), 202)
    return json_response(await run_result(store, done))


async def cancel(request: web.Request) -> web.Response:
    """Cancel a run: only its requester (the key's identity) or an admin."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.runs_write)
    body = await body_of(request, NoBody)
    run_id = path_id(request)
    reason = body.reason or f"cancelled over the API by {caller.key.name}"
    run = await deps.container.engine.cancel(
        Cancel(run_id=run_id, actor=caller.identity, channel="api", reason=reason)
    )
    return json_response(await run_view(deps.container.store, run))


async def listing(request: web.Request) -> web.Response:
    """Runs newest first, by status and workflow."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.runs_read)
    query = query_of(request, RunList)
    statuses = None
    if query.status:
        try:
            statuses = [RunStatus(s.strip()) for s in query.status.split(",")]
        except ValueError:
            known = ", ".join(s.value for s in RunStatus)
            raise ApiError(
                400, "validation_failed", f"unknown status; use {known}", errors={"status": f"use {known}"}
            ) from None
    page = await deps.clients.page_runs(
        status=statuses, workflow_id=query.workflow, after=cursor_of(query.cursor), limit=query.limit
    )
    items = [await run_view(deps.container.store, r) for r in page.runs]
    return json_response(RunPage(items=items, next_cursor=next_cursor(page.after)))
