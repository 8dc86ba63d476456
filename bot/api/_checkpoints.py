"""``/api/v1/checkpoints``: ask, read, wait for, decide and cancel checkpoints."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from bot.api._auth import Caller
from bot.api._deps import ApiDeps, caller_of, deps_of
from bot.api._http import body_of, path_id, query_of
from bot.api._idempotency import REPLAYED, claim, idempotency_key, request_hash
from bot.api._models import (
    CheckpointCreate,
    CheckpointList,
    CheckpointOut,
    CheckpointPage,
    DecisionCreate,
    NoBody,
    VoteRecorded,
    WaitQuery,
)
from bot.api._paging import cursor_of, next_cursor
from bot.api._problems import ApiError, json_response
from bot.api._views import checkpoint_out, decision_of, pending_out
from engine.ask import ASK_WORKFLOW, Ask, ask_inputs, ask_workflow
from engine.clients import Scope
from engine.commands import Cancel, Decide
from engine.errors import Conflict
from engine.model import Checkpoint, CheckpointStatus, Run

__all__ = ["cancel", "create", "decide", "get", "listing", "wait_decision"]

# how long a replay waits for a concurrent first request to open the checkpoint
_OPENING_S = 5.0


def _origin(caller: Caller, body: CheckpointCreate, key: str) -> dict[str, Any]:
    return {
        "channel": "api",
        "client": caller.key.id,
        "client_name": caller.key.name,
        "idempotency_key": key,
        "callback_url": str(body.callback_url) if body.callback_url else None,
    }


async def _view(deps: ApiDeps, cp: Checkpoint) -> CheckpointOut:
    return checkpoint_out(cp, await decision_of(deps.container.store, cp))


async def _opened(deps: ApiDeps, run: Run) -> Checkpoint:
    """The ask's checkpoint, once its run has opened it (driving the run when nobody does)."""
    store, engine = deps.container.store, deps.container.engine
    deadline = time.monotonic() + _OPENING_S
    while True:
        found = await store.list_checkpoints(run_id=run.id)
        if found:
            return found[-1]
        current = await engine.drive(run.id)
        if current is not None and current.status.final and not await store.list_checkpoints(run_id=run.id):
            raise ApiError(500, "internal_error", f"run {run.id} ended without opening its checkpoint")
        if time.monotonic() > deadline:
            raise ApiError(503, "not_ready", "the checkpoint is still being opened; send the request again")
        await asyncio.sleep(0.05)


async def create(request: web.Request) -> web.Response:
    """Ask a person (idempotent by key)."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.checkpoints_create)
    body = await body_of(request, CheckpointCreate)
    key = idempotency_key(request, body.key)
    c = deps.container
    ask = Ask.model_validate(body.model_dump(exclude={"key", "callback_url"}))
    workflow = ask_workflow(ask, c.roles)
    claimed = await claim(
        deps.clients, caller, key, request_hash(body), "checkpoint", c.ids.new("run_"), c.clock.now()
    )
    try:
        run = await c.engine.start_pinned(
            workflow,
            ask_inputs(ask),
            requester=caller.identity,
            origin=_origin(caller, body, key),
            run_id=claimed.resource_id,
        )
    except Conflict:
        run = await c.store.get_run(claimed.resource_id)  # created by the first request
    cp = await _opened(deps, run)
    headers = {REPLAYED: "true"} if claimed.replay else {}
    return json_response(await _view(deps, cp), 200 if claimed.replay else 201, headers)


async def get(request: web.Request) -> web.Response:
    """One checkpoint, with its decision once resolved."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.checkpoints_read)
    cp = await deps.container.store.get_checkpoint(path_id(request))
    return json_response(await _view(deps, cp))


async def wait_decision(request: web.Request) -> web.Response:
    """The decision (200), or 202 while open after waiting up to ``wait`` seconds."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.checkpoints_read)
    query = query_of(request, WaitQuery)
    store = deps.container.store
    cp = await store.get_checkpoint(path_id(request))

    async def resolved() -> Checkpoint | None:
        current = await store.get_checkpoint(cp.id)
        return current if current.status is CheckpointStatus.resolved else None

    done = await deps.waiters.until(cp.run_id, resolved, query.wait)
    if done is None:
        return json_response(pending_out(await store.get_checkpoint(cp.id)), 202)
    decision = await decision_of(store, done)
    assert decision is not None  # a resolved checkpoint has a decision object
    return json_response(decision)


async def decide(request: web.Request) -> web.Response:
    """Decide as the person the key is bound to, through the one decision gate."""
    deps, caller = deps_of(request), await caller_of(request)
    body = await body_of(request, DecisionCreate)
    cp_id = path_id(request)
    engine = deps.container.engine
    command = Decide(
        checkpoint_id=cp_id,
        action=body.action,
        actor=caller.identity,
        channel="api",
        data=body.data,
        comment=body.comment,
        confirm=body.confirm,
        expected_version=body.version,
    )
    if caller.person is not None:
        caller.require(Scope.checkpoints_decide)
    # an agent's key goes to the gate too, which refuses it (and the refusal is audited)
    decision = await engine.decide(command, drive=False, verify=False)
    cp = await deps.container.store.get_checkpoint(cp_id)
    if decision is None:
        vote = VoteRecorded(
            checkpoint_id=cp.id, approvals=len(cp.approvals), quorum=cp.quorum, version=cp.version
        )
        return json_response(vote, 202)
    deps.background(_after(deps, decision.run_id, decision.id), f"after decision {decision.id}")
    out = await decision_of(deps.container.store, cp)
    assert out is not None
    return json_response(out)


async def _after(deps: ApiDeps, run_id: str, decision_id: str) -> None:
    """What a decision sets off, after the response: the flag check and the rest of the run."""
    engine = deps.container.engine
    decisions = await deps.container.store.list_decisions(run_id=run_id)
    for decision in decisions:
        if decision.id == decision_id:
            await engine.flag_check(decision)
    await engine.drive(run_id)


async def cancel(request: web.Request) -> web.Response:
    """Withdraw an ask (its run is cancelled): only its requester or an admin."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.checkpoints_create)
    body = await body_of(request, NoBody)
    store = deps.container.store
    cp = await store.get_checkpoint(path_id(request))
    run = await store.get_run(cp.run_id)
    if run.workflow_id != ASK_WORKFLOW:
        raise ApiError(
            409,
            "not_an_ask",
            f"checkpoint {cp.id} belongs to a workflow run: cancel the run"
            f" (POST /api/v1/runs/{run.id}/cancel)",
        )
    reason = body.reason or f"withdrawn over the API by {caller.key.name}"
    await deps.container.engine.cancel(
        Cancel(run_id=run.id, actor=caller.identity, channel="api", reason=reason)
    )
    return json_response(await _view(deps, await store.get_checkpoint(cp.id)))


async def listing(request: web.Request) -> web.Response:
    """Checkpoints newest first (open ones by default), by exact assignee."""
    deps, caller = deps_of(request), await caller_of(request)
    caller.require(Scope.checkpoints_read)
    query = query_of(request, CheckpointList)
    assignee = query.assignee
    if assignee is not None and ":" not in assignee:
        assignee = f"user:{assignee}"
    open_only = {"open": True, "resolved": False, "all": None}[query.status]
    page = await deps.clients.page_checkpoints(
        open_only=open_only, assignee=assignee, after=cursor_of(query.cursor), limit=query.limit
    )
    items = [await _view(deps, cp) for cp in page.checkpoints]
    return json_response(CheckpointPage(items=items, next_cursor=next_cursor(page.after)))
