"""Handlers of the local web console (private): pages, forms and their POST targets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jinja2 import Environment

from bot.graphs import drawable
from bot.web import _forms
from bot.wiring import Container
from engine.commands import Cancel
from engine.errors import Conflict, InvalidInput, NotAllowed
from engine.graph import workflow_graph
from engine.model import Checkpoint, Run, RunStatus, parse_duration
from engine.outcome import load_outcomes, run_outcome
from engine.people import Person
from engine.sensitive import redact_checkpoint, redact_decision, redact_event, redact_run, redact_step
from engine.stats import load_stats

log = logging.getLogger("signoff.web")

CONTAINER = web.AppKey("signoff.web.container", Container)
JINJA = web.AppKey("signoff.web.jinja", Environment)
TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("signoff.web.tasks")
# the CSRF token of the request's session, put there by the guard for the forms of the page
CSRF_TOKEN = web.RequestKey("signoff.web.csrf", str)
# the cookie's session id (guard), the one replacing it (sign-in, logout), and who is signed in
SID = web.RequestKey("signoff.web.sid", str)
NEW_SID = web.RequestKey("signoff.web.new_sid", str)
PERSON = web.RequestKey("signoff.web.person", Person)
# what the header counts for the signed-in person (waiting for them), when known
COUNTS: web.RequestKey[dict[str, str]] = web.RequestKey("signoff.web.counts")
# what waits for the person (the newest 100), when the header counted it
WAITING: web.RequestKey[list[Checkpoint]] = web.RequestKey("signoff.web.waiting")

ACTOR_COOKIE = "signoff_actor"
DEFAULT_ACTOR = "local-user"
_ACTOR = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
# A run is driven in the background; the response waits this long so that quick workflows
# are already at their first checkpoint (or finished) when the browser lands on the run page.
DRIVE_WAIT_S = 2.0
_HISTORY_KINDS = ("run.", "checkpoint.", "decision.", "escalation.", "reminder.")
_PRIORITY_ORDER = {"urgent": 0, "high": 1, "medium": 2, "low": 3}
RUNS_PAGE = 50


# --------------------------------------------------------------------------- helpers


def actor_of(request: web.Request) -> str:
    """Who acts: the signed-in person (with a login), else the name chosen in the header form."""
    person: Person | None = request.get(PERSON)
    if person is not None:
        return person.actor
    name = request.cookies.get(ACTOR_COOKIE, "")
    return name if _ACTOR.match(name) else DEFAULT_ACTOR


def cursor_of(raw: str | None) -> tuple[datetime, str] | None:
    """A page cursor from the query (``<iso time>|<id>``); None when absent or malformed."""
    if not raw or "|" not in raw:
        return None
    when, _, ident = raw.partition("|")
    try:
        return datetime.fromisoformat(when), ident
    except ValueError:
        return None


def cursor_text(cursor: tuple[datetime, str]) -> str:
    """The query value of a page cursor."""
    return f"{cursor[0].isoformat()}|{cursor[1]}"


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render a template with the values every page uses (actor, clock, current path)."""
    container = request.app[CONTAINER]
    html = (
        request.app[JINJA]
        .get_template(template)
        .render(
            actor=actor_of(request),
            person=request.get(PERSON),
            login=container.settings.login.enabled,
            counts=request.get(COUNTS),
            now=container.clock.now(),
            path=request.path_qs,
            csrf=request.get(CSRF_TOKEN, ""),
            **context,
        )
    )
    return web.Response(text=html, status=status, content_type="text/html")


async def outcomes_of(container: Container, runs: list[Run]) -> dict[str, str]:
    """Run id -> its outcome's word ("" when none) for the run lists' badges."""
    found = await load_outcomes(container.store, runs)
    return {run_id: outcome.value if outcome else "" for run_id, outcome in found.items()}


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


def local_path(raw: object) -> str:
    """``raw`` when it is a path on this console, else ``/``: a form or a ``next=`` must not
    bounce a browser to another site. Browsers (and ``yarl``, when the ``Location`` is built)
    drop tabs and line breaks and read ``\\`` as ``/``, so ``/<tab>/evil.example`` would be
    ``//evil.example``: any control character, space or backslash is refused."""
    back = str(raw or "/")
    if not back.startswith("/") or back.startswith("//"):
        return "/"
    if any(ch == "\\" or ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in back):
        return "/"
    return back


async def drive_soon(app: web.Application, run_id: str) -> None:
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


def flags_of(events: list[Any]) -> dict[str, str]:
    """Decision id -> why the verifier flagged it (``decision.flagged`` events)."""
    return {
        str(e.payload.get("decision")): str(e.payload.get("reason", ""))
        for e in events
        if e.kind == "decision.flagged"
    }


def history_of(events: list[Any], checkpoint_id: str | None = None) -> list[Any]:
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
    waiting = request.get(WAITING)
    if waiting is None:
        waiting = (await c.engine.waiting_for(actor_of(request), limit=100)).items
    mine = {cp.id for cp in waiting}
    return render(
        request,
        "home.html",
        workflows=c.catalog.all(),
        broken=broken,
        checkpoints=open_cps,
        runs=runs,
        outcomes=await outcomes_of(c, runs),
        mine=mine,
    )


async def workflow_page(request: web.Request) -> web.Response:
    """The start form of one workflow."""
    workflow = request.app[CONTAINER].catalog.get(request.match_info["workflow_id"])
    return await _start_form(request, workflow, {}, {})


async def _start_form(
    request: web.Request, workflow: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> web.Response:
    from bot.web._versions import versions_context

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
        **await versions_context(c, workflow),
        outcomes=await outcomes_of(c, runs),
        graph=workflow_graph(workflow),
        drawable=drawable(),
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
    await drive_soon(request.app, run.id)
    raise redirect(f"/runs/{run.id}")


async def runs_page(request: web.Request) -> web.Response:
    """Runs, newest first, a page at a time, filtered by status and a search (part of the id,
    workflow or requester)."""
    wanted = request.query.get("status", "")
    search = request.query.get("q", "").strip()[:100]
    statuses = [s.value for s in RunStatus]
    status_filter = [RunStatus(wanted)] if wanted in statuses else None
    before = cursor_of(request.query.get("before"))
    runs = await request.app[CONTAINER].store.list_runs(
        status=status_filter, limit=RUNS_PAGE + 1, search=search or None, before=before
    )
    following = None
    if len(runs) > RUNS_PAGE:
        runs = runs[:RUNS_PAGE]
        query = {"status": wanted, "q": search, "before": cursor_text((runs[-1].created_at, runs[-1].id))}
        following = "/runs?" + urlencode({k: v for k, v in query.items() if v})
    notice = f"unknown status '{wanted}'; showing every run" if wanted and not status_filter else ""
    return render(
        request,
        "runs.html",
        runs=runs,
        outcomes=await outcomes_of(request.app[CONTAINER], runs),
        statuses=statuses,
        wanted=wanted,
        search=search,
        notice=notice,
        following=following,
        first=before is None,
    )


async def stats_page(request: web.Request) -> web.Response:
    """Checkpoint analytics: rates, time to decision, approvers and advice (as ``signoff stats``),
    and the charts, whose data the page loads from ``/stats/charts/{chart}``."""
    container = request.app[CONTAINER]
    workflow = request.query.get("workflow", "") or None
    since_text = request.query.get("since", "30d").strip() or "30d"
    cost_by = request.query.get("cost_by", "workflow")
    cost_by = cost_by if cost_by in ("workflow", "node", "model") else "workflow"
    notice = ""
    try:
        since = container.clock.now() - parse_duration(since_text)
    except ValueError as exc:
        notice, since = str(exc), None
    except OverflowError:
        notice, since = f"bad duration {since_text!r}: it reaches back before the year 1", None
    report = await load_stats(container.store, workflow=workflow, since=since)
    shown = [w for w in container.catalog.all() if workflow in (None, w.id)]
    nodes = sorted({node for w in shown for node in w.nodes} | {n.node for n in report.nodes})
    node = request.query.get("node", "")
    if node and node not in nodes:
        notice = "; ".join(filter(None, [notice, f"no node '{node}' here: showing every node"]))
        node = ""
    base = {"workflow": workflow or "", "node": node, "since": since_text if since is not None else "30d"}

    def chart_src(chart: str, **extra: str) -> str:
        query = {k: v for k, v in {**base, **extra}.items() if v}
        return f"/stats/charts/{chart}?{urlencode(query)}"

    return render(
        request,
        "stats.html",
        report=report,
        workflows=container.catalog.ids(),
        workflow=workflow or "",
        since=since_text,
        cost_by=cost_by,
        nodes=nodes,
        node=node,
        notice=notice,
        chart_src=chart_src,
    )


async def run_page(request: web.Request) -> web.Response:
    """A run with its steps, checkpoints, decisions and history."""
    return await _run_view(request, request.match_info["run_id"])


async def _run_view(request: web.Request, run_id: str, notice: str = "", status: int = 200) -> web.Response:
    container = request.app[CONTAINER]
    store = container.store
    # read first: a change committed while the page is built reaches it as a live event
    live_after = (await store.audit_head())[0]
    run = await store.get_run(run_id)
    # sensitive values (marked in the workflow's schemas) are masked wherever they were copied
    r = await container.engine.redactor(run)
    checkpoints = sorted(await store.list_checkpoints(run_id=run.id), key=lambda cp: cp.created_at)
    decisions = await store.list_decisions(run_id=run.id)
    events = await store.audit_events(run_id=run.id)
    steps = await store.list_steps(run.id)
    pinned = await container.catalog.pinned(run.workflow_hash, store)
    return render(
        request,
        "run.html",
        status=status,
        run=redact_run(r, run),
        outcome=run_outcome(run, checkpoints),
        graph=workflow_graph(pinned, run, steps),
        drawable=drawable(),
        steps=[redact_step(r, s) for s in steps],
        checkpoints=[redact_checkpoint(r, cp) for cp in checkpoints],
        decisions=[redact_decision(r, d) for d in decisions],
        flags=flags_of(events),
        history=history_of([redact_event(r, e) for e in events]),
        notice=notice,
        reruns=[rerun.id for rerun in await store.reruns_of(run.id)],
        nodes=list((await container.catalog.pinned(run.workflow_hash, store)).nodes)
        if run.status.final
        else [],
        live_after=live_after,
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
    raise redirect(f"/runs/{run_id}")


async def set_actor(request: web.Request) -> web.Response:
    """Remember who is acting (a cookie), then go back to the page the form was on."""
    if request.app[CONTAINER].settings.login.enabled:
        message = (
            "People sign in to this console, so everyone acts as themselves: there is no name to choose."
        )
        return render(request, "error.html", status=403, title="Not here", message=message)
    form = await request.post()
    name = str(form.get("actor", "")).strip()
    back = local_path(form.get("next"))
    if not _ACTOR.match(name):
        message = "A name is 1 to 64 letters, digits or . _ @ + - (e.g. alice, or a Slack id like U024BE7LH)."
        return render(request, "error.html", status=400, title="That name cannot be used", message=message)
    response = redirect(back)
    response.set_cookie(ACTOR_COOKIE, name, httponly=True, samesite="Strict", max_age=365 * 86400)
    raise response
