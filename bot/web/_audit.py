"""Audit pages of the console (private): one run's trail (``/runs/{id}/audit``) and the whole
trail, searched and paged (``/audit``).

What is shown is what ``signoff audit show`` and ``export`` show: each run's sensitive values
masked (``engine.sensitive``), a value removed by a retention purge shown as removed (with the
digest the chain keeps), never the stored hashes changed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.web._views import CONTAINER, render
from bot.wiring import Container
from engine.audit import purged_digest
from engine.errors import NotFound
from engine.model import AuditEvent
from engine.sensitive import Redactor, redact_event

AUDIT_PAGE = 50
SEARCH_MAX = 100
KINDS = (
    "run.",
    "step.",
    "checkpoint.",
    "decision.",
    "escalation.",
    "reminder.",
    "delegation.",
    "delivery.",
    "person.",
    "console.",
    "api_key.",
    "webhook.",
    "retention.",
)


class Detail:
    """One payload entry as the page shows it: a value, or a note that a purge removed it."""

    def __init__(self, key: str, value: Any) -> None:
        self.key = key
        self.value = value  # the ``brief`` filter says when a purge removed it
        self.removed = purged_digest(value) is not None


def details(event: AuditEvent) -> list[Detail]:
    """The event's payload, entry by entry, empty values left out."""
    return [Detail(k, v) for k, v in event.payload.items() if v not in (None, "", [], {})]


async def masked(container: Container, events: list[AuditEvent]) -> list[AuditEvent]:
    """``events`` with each run's sensitive values masked (one redactor per run)."""
    redactors: dict[str, Redactor] = {}
    out = []
    for e in events:
        if e.run_id is None:
            out.append(e)
            continue
        if e.run_id not in redactors:
            try:
                redactors[e.run_id] = await container.engine.redactor(await container.store.get_run(e.run_id))
            except NotFound:
                redactors[e.run_id] = Redactor()
        out.append(redact_event(redactors[e.run_id], e))
    return out


async def run_audit_page(request: web.Request) -> web.Response:
    """Every audit event of one run, oldest first, masked."""
    container = request.app[CONTAINER]
    run = await container.store.get_run(request.match_info["run_id"])
    redactor = await container.engine.redactor(run)
    events = [redact_event(redactor, e) for e in await container.store.audit_events(run_id=run.id)]
    return render(request, "run_audit.html", run=run, events=events, details=details)


async def audit_page(request: web.Request) -> web.Response:
    """The audit trail, newest first, a page at a time: searched by part of the actor, kind,
    channel, run or checkpoint id, and filtered by a kind of event."""
    container = request.app[CONTAINER]
    search = request.query.get("q", "").strip()[:SEARCH_MAX]
    wanted = request.query.get("kind", "")
    kind = wanted if wanted in KINDS else None
    notices = []
    if wanted and kind is None:
        notices.append(f"unknown kind '{wanted}' (one of {', '.join(KINDS)}); showing every kind")
    raw_before = request.query.get("before", "")
    # an event number: ASCII digits that fit the column (a 64-bit integer)
    before = (
        int(raw_before) if raw_before.isascii() and raw_before.isdigit() and len(raw_before) <= 18 else None
    )
    if raw_before and before is None:
        notices.append(f"'before' is an event number, not '{raw_before}'; showing the newest events")
    found = await container.store.search_audit(
        search=search or None, kind=kind, before_seq=before, limit=AUDIT_PAGE + 1
    )
    following = None
    if len(found) > AUDIT_PAGE:
        found = found[:AUDIT_PAGE]
        query = {"q": search, "kind": kind or "", "before": str(found[-1].seq)}
        following = "/audit?" + urlencode({k: v for k, v in query.items() if v})
    return render(
        request,
        "audit.html",
        events=await masked(container, found),
        details=details,
        search=search,
        kind=kind or "",
        kinds=KINDS,
        notice="; ".join(notices),
        following=following,
        first=before is None,
    )
