"""The checkpoint page and its decision forms (private).

The page renders ``engine.shown.shown_document``: every field Approve passes on, in full, with
its schema label, as escaped text. Each form names the checkpoint version it rendered and the
hash of what it showed; the version becomes ``Decide.expected_version``, and the hash only
picks what a 409 page compares the current proposal with.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web import _forms
from bot.web._changes import Change, changes_since
from bot.web._views import (
    CONTAINER,
    actor_of,
    drive_soon,
    flags_of,
    history_of,
    redirect,
    render,
)
from engine.commands import Decide
from engine.errors import Conflict, InvalidInput, NeedsDetail, NotAllowed
from engine.model import Checkpoint, CheckpointStatus
from engine.sensitive import MASK, mask_marked, redact_decision, redact_event, redact_run
from engine.shown import shown_document, shown_hash


async def checkpoint_page(request: web.Request) -> web.Response:
    """A checkpoint: what the person is shown, and the forms to decide it."""
    store = request.app[CONTAINER].store
    # read first: a change committed while the page is built reaches it as a live event
    after = (await store.audit_head())[0]
    cp = await store.get_checkpoint(request.match_info["checkpoint_id"])
    return await _checkpoint_view(request, cp, live_after=after)


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
    seen: str | None = None,
    status: int = 200,
    live_after: int | None = None,
) -> web.Response:
    container = request.app[CONTAINER]
    store = container.store
    if live_after is None:
        live_after = (await store.audit_head())[0]
    errors = errors or {}
    run = await store.get_run(cp.run_id)
    r = await container.engine.redactor(run)
    # a sensitive field is never sent back to the browser: its input starts empty (kept if left so)
    prefill = mask_marked(cp.proposed, cp.response_schema) if values is None else values
    fields = _forms.build_fields(cp.response_schema, _blank_masked(prefill), errors)
    events = [redact_event(r, e) for e in await store.audit_events(run_id=cp.run_id)]
    changes: list[Change] | None = None if seen is None else changes_since(cp, events, seen)
    open_now = cp.status is CheckpointStatus.open
    can = open_now and await request.app[CONTAINER].engine.can_decide(cp, actor_of(request))
    return render(
        request,
        "checkpoint.html",
        status=status,
        cp=cp,
        shown=shown_document(cp),
        seen_hash=shown_hash(cp),
        stale=seen is not None,
        changes=changes,
        run=redact_run(r, run),
        decisions=[redact_decision(r, d) for d in await store.list_decisions(checkpoint_id=cp.id)],
        flags=flags_of(events),
        question=question,
        comment=comment,
        history=history_of(events, cp.id),
        fields=fields,
        general=_forms.general_errors(cp.response_schema, errors),
        active=active,
        notice=notice,
        custom=[o for o in cp.options if o not in {"approve", "reject", "edit", "answer"}],
        can_decide=can,
        live_after=live_after,
    )


def _version(form: Any) -> int | None:
    raw = str(form.get("version", ""))
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


async def decide(request: web.Request) -> web.Response:
    """Turn a posted form into a ``Decide`` command; refusals re-render the page with the reason.

    The form names the checkpoint version it rendered (``expected_version``): a decision on an
    older copy is refused with 409 and the page shows the new proposal and what changed.
    """
    c = request.app[CONTAINER]
    cp = await c.store.get_checkpoint(request.match_info["checkpoint_id"])
    form = await request.post()
    action = str(form.get("action", ""))
    version = _version(form)
    if version is None:
        notice = "This form does not say which version of the checkpoint it showed, so nothing was decided."
        return await _checkpoint_view(
            request, cp, notice=notice + " Check the page and decide again.", status=400
        )
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
        expected_version=version,
        seen=_hex_digest(form.get("seen")),  # the hash of the document the page showed
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
        if fresh.status is CheckpointStatus.open and fresh.version != version:
            return await _stale_view(request, fresh, str(exc), str(form.get("seen", "")))
        return await _checkpoint_view(request, fresh, notice=str(exc), status=409)
    if decision is not None:
        await drive_soon(request.app, cp.run_id)
    raise redirect(f"/runs/{cp.run_id}")


async def _stale_view(request: web.Request, cp: Checkpoint, reason: str, seen: str) -> web.Response:
    notice = f"Your decision was not counted: {reason}."
    return await _checkpoint_view(request, cp, notice=notice, seen=seen, status=409)


def _hex_digest(value: object) -> str | None:
    text = str(value or "")
    return text if len(text) == 64 and all(ch in "0123456789abcdef" for ch in text) else None


def _blank_masked(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v != MASK}
