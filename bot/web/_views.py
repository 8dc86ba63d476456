"""Handlers of the local web console (private): pages, forms and their POST targets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from aiohttp import web
from jinja2 import Environment

from bot.web import _forms
from bot.wiring import Container
from engine.commands import Cancel, Decide
from engine.errors import Conflict, InvalidInput, NeedsDetail, NotAllowed
from engine.model import Checkpoint, RunStatus, parse_duration
from engine.stats import load_stats

log = logging.getLogger("signoff.web")

CONTAINER = web.AppKey("signoff.web.container", Container)
JINJA = web.AppKey("signoff.web.jinja", Environment)
TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("signoff.web.tasks")

ACTOR_COOKIE = "signoff_actor"
DEFAULT_ACTOR = "local-user"
_ACTOR = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
# A run is driven in the background; the response waits this long so that quick workflows
# are already at their first checkpoint (or finished) when the browser lands on the run page.
DRIVE_WAIT_S = 2.0
_HISTORY_KINDS = ("run.", "checkpoint.", "decision.", "escalation.", "reminder.")
_PRIORITY_ORDER = {"urgent": 0, "high": 1, "medium": 2, "low": 3}


# --------------------------------------------------------------------------- helpers


def actor_of(request: web.Request) -> str:
    """The name the person chose in the header form (there is no login in local mode)."""
    name = request.cookies.get(ACTOR_COOKIE, "")
    return name if _ACTOR.match(name) else DEFAULT_ACTOR


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render a template with the values every page uses (actor, clock, current path)."""
    container = request.app[CONTAINER]
    html = (
        request.app[JINJA]
        .get_template(template)
        .render(actor=actor_of(request), now=container.clock.now(), path=request.path_qs, **context)
    )
    return web.Response(text=html, status=status, content_type="text/html")


def _redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


async def _drive_soon(app: web.Application, run_id: str) -> None:
    engine = app[CONTAINER].engine

    async def drive() -> None:
        try:
            await engine.drive(run_id)
        except Exception:
            log.exception("driving run %s from the web console failed", run_id)

    task = asyncio.create_task(drive())
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), DRIVE_WAIT_S)


async def stop_tasks(app: web.Application) -> None:
    """Cancel runs still being driven when the server stops; their leases expire and recovery resumes them."""
    running = app[TASKS]
    tasks = list(running)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _flags(events: list[Any]) -> dict[str, str]:
    """Decision id -> why the verifier flagged it (``decision.flagged`` events)."""
    return {
        str(e.payload.get("decision")): str(e.payload.get("reason", ""))
        for e in events
        if e.kind == "decision.flagged"
    }


def _history(events: list[Any], checkpoint_id: str | None = None) -> list[Any]:
    return [
        e
        for e in events
        if e.kind.startswith(_HISTORY_KINDS) and (checkpoint_id is None or e.checkpoint_id == checkpoint_id)
    ]


# --------------------------------------------------------------------------- pages


async def home(request: web.Request) -> web.Response:
    """Workflows, broken workflow files, open checkpoints and recent runs."""
    c = request.app[CONTAINER]
    open_cps = await c.store.list_checkpoints(open_only=True, limit=100)
    open_cps.sort(key=lambda cp: (_PRIORITY_ORDER.get(cp.priority.value, 9), cp.due_at is None, cp.due_at))
    broken = [str(issue) for err in c.catalog.errors for issue in err.issues]
    runs = await c.store.list_runs(limit=15)
    return render(
        request, "home.html", workflows=c.catalog.all(), broken=broken, checkpoints=open_cps, runs=runs
    )


async def workflow_page(request: web.Request) -> web.Response:
    """The start form of one workflow."""
    workflow = request.app[CONTAINER].catalog.get(request.match_info["workflow_id"])
    return await _start_form(request, workflow, {}, {})


async def _start_form(
    request: web.Request, workflow: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> web.Response:
    c = request.app[CONTAINER]
    runs = await c.store.list_runs(workflow_id=workflow.id, limit=10)
    return render(
        request,
        "workflow.html",
        status=status,
        workflow=workflow,
        fields=_forms.build_fields(workflow.inputs, values, errors),
        general=_forms.general_errors(workflow.inputs, errors),
        runs=runs,
    )


async def start_run(request: web.Request) -> web.Response:
    """Validate the start form on the server, start the run and go to its page."""
    c = request.app[CONTAINER]
    workflow = c.catalog.get(request.match_info["workflow_id"])
    parsed = _forms.parse_form(workflow.inputs, await request.post())
    errors = dict(parsed.errors)
    try:
        c.engine.check_inputs(workflow, parsed.values)
    except InvalidInput as exc:
        errors = {**exc.errors, **errors} or {"": str(exc)}
    if errors:
        return await _start_form(request, workflow, parsed.shown(), errors, status=400)
    try:
        run = await c.engine.start(
            workflow.id, parsed.values, requester=actor_of(request), origin={"channel": "web"}
        )
    except InvalidInput as exc:
        return await _start_form(request, workflow, parsed.shown(), exc.errors or {"": str(exc)}, 400)
    await _drive_soon(request.app, run.id)
    raise _redirect(f"/runs/{run.id}")


async def runs_page(request: web.Request) -> web.Response:
    """Runs, newest first, optionally filtered by status."""
    wanted = request.query.get("status", "")
    statuses = [s.value for s in RunStatus]
    status_filter = [RunStatus(wanted)] if wanted in statuses else None
    runs = await request.app[CONTAINER].store.list_runs(status=status_filter, limit=200)
    notice = f"unknown status '{wanted}'; showing every run" if wanted and not status_filter else ""
    return render(request, "runs.html", runs=runs, statuses=statuses, wanted=wanted, notice=notice)


async def stats_page(request: web.Request) -> web.Response:
    """Checkpoint analytics: rates, time to decision, approvers and advice (as ``signoff stats``)."""
    container = request.app[CONTAINER]
    workflow = request.query.get("workflow", "") or None
    since_text = request.query.get("since", "30d").strip() or "30d"
    notice = ""
    try:
        since = container.clock.now() - parse_duration(since_text)
    except ValueError as exc:
        notice, since = str(exc), None
    report = await load_stats(container.store, workflow=workflow, since=since)
    return render(
        request,
        "stats.html",
        report=report,
        workflows=container.catalog.ids(),
        workflow=workflow or "",
        since=since_text,
        notice=notice,
        seconds=_seconds,
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return (
        f"{value:.0f}s"
        if value < 120
        else f"{value / 60:.0f} min"
        if value < 7200
        else f"{value / 3600:.1f} h"
    )


async def run_page(request: web.Request) -> web.Response:
    """A run with its steps, checkpoints, decisions and history."""
    return await _run_view(request, request.match_info["run_id"])


async def _run_view(request: web.Request, run_id: str, notice: str = "", status: int = 200) -> web.Response:
    store = request.app[CONTAINER].store
    run = await store.get_run(run_id)
    checkpoints = sorted(await store.list_checkpoints(run_id=run.id), key=lambda cp: cp.created_at)
    decisions = await store.list_decisions(run_id=run.id)
    events = await store.audit_events(run_id=run.id)
    return render(
        request,
        "run.html",
        status=status,
        run=run,
        steps=await store.list_steps(run.id),
        checkpoints=checkpoints,
        decisions=decisions,
        flags=_flags(events),
        history=_history(events),
        notice=notice,
    )


async def cancel_run(request: web.Request) -> web.Response:
    """Cancel a run as the current actor; refusals are shown on the run page."""
    run_id = request.match_info["run_id"]
    engine = request.app[CONTAINER].engine
    try:
        await engine.cancel(Cancel(run_id=run_id, actor=actor_of(request), channel="web"))
    except NotAllowed as exc:
        return await _run_view(request, run_id, f"Not allowed: {exc}", 403)
    except Conflict as exc:
        return await _run_view(request, run_id, str(exc), 409)
    raise _redirect(f"/runs/{run_id}")


async def checkpoint_page(request: web.Request) -> web.Response:
    """A checkpoint: what the person is shown, and the forms to decide it."""
    cp = await request.app[CONTAINER].store.get_checkpoint(request.match_info["checkpoint_id"])
    return await _checkpoint_view(request, cp)


async def _checkpoint_view(
    request: web.Request,
    cp: Checkpoint,
    *,
    active: str = "",
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    question: str = "",
    comment: str = "",
    status: int = 200,
) -> web.Response:
    store = request.app[CONTAINER].store
    errors = errors or {}
    fields = _forms.build_fields(cp.response_schema, cp.proposed if values is None else values, errors)
    events = await store.audit_events(run_id=cp.run_id)
    return render(
        request,
        "checkpoint.html",
        status=status,
        cp=cp,
        run=await store.get_run(cp.run_id),
        decisions=await store.list_decisions(checkpoint_id=cp.id),
        flags=_flags(events),
        question=question,
        comment=comment,
        history=_history(events, cp.id),
        fields=fields,
        general=_forms.general_errors(cp.response_schema, errors),
        active=active,
        notice=notice,
        custom=[o for o in cp.options if o not in {"approve", "reject", "edit", "answer"}],
    )


async def decide(request: web.Request) -> web.Response:
    """Turn a posted form into a ``Decide`` command; refusals re-render the page with the reason."""
    c = request.app[CONTAINER]
    cp = await c.store.get_checkpoint(request.match_info["checkpoint_id"])
    form = await request.post()
    action = str(form.get("action", ""))
    with_fields = action in {"edit", "answer"}
    parsed = _forms.parse_form(cp.response_schema, form) if with_fields else _forms.Parsed()
    shown = parsed.shown() if with_fields else None
    if parsed.errors:
        errors = {
            **_forms.other_errors(cp.response_schema, {**cp.proposed, **parsed.values}),
            **parsed.errors,
        }
        return await _checkpoint_view(request, cp, active=action, values=shown, errors=errors, status=400)
    command = Decide(
        checkpoint_id=cp.id,
        action=action,
        actor=actor_of(request),
        channel="web",
        data=parsed.values,
        comment=str(form.get("comment", "")).strip() or None,
        confirm=str(form.get("confirm", "")).strip() or None,
    )
    try:
        decision = await c.engine.decide(command, drive=False)
    except InvalidInput as exc:
        # approve passes the proposed values on, so its field errors are about those values
        notice = "" if with_fields else f"{exc}: " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        errs = exc.errors or {"": str(exc)}
        return await _checkpoint_view(
            request, cp, active=action, values=shown, errors=errs, notice=notice, status=400
        )
    except NeedsDetail as exc:
        # nothing was decided: the question goes next to the form, with the answer kept
        return await _checkpoint_view(
            request,
            cp,
            active=action,
            values=shown,
            question=exc.question,
            comment=command.comment or "",
            status=400,
        )
    except NotAllowed as exc:
        return await _checkpoint_view(request, cp, active=action, values=shown, notice=str(exc), status=403)
    except Conflict as exc:
        fresh = await c.store.get_checkpoint(cp.id)
        return await _checkpoint_view(request, fresh, notice=str(exc), status=409)
    if decision is not None:
        await _drive_soon(request.app, cp.run_id)
    raise _redirect(f"/runs/{cp.run_id}")


async def set_actor(request: web.Request) -> web.Response:
    """Remember who is acting (a cookie), then go back to the page the form was on."""
    form = await request.post()
    name = str(form.get("actor", "")).strip()
    back = str(form.get("next", "/"))
    # only local paths, so the form cannot be used to bounce a browser elsewhere
    if not back.startswith("/") or back.startswith("//"):
        back = "/"
    if not _ACTOR.match(name):
        message = "A name is 1 to 64 letters, digits or . _ @ + - (e.g. alice, or a Slack id like U024BE7LH)."
        return render(request, "error.html", status=400, title="That name cannot be used", message=message)
    response = _redirect(back)
    response.set_cookie(ACTOR_COOKIE, name, httponly=True, samesite="Strict", max_age=365 * 86400)
    raise response
