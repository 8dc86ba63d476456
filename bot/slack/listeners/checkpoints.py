"""Buttons on checkpoint cards (messages and the Home tab).

Approve and custom options decide at once (ack, then ``engine.decide``, which resumes the
run); they are only offered next to the whole proposal. Reject, Edit, Answer, a confirm word
and "Review and approve…" (a proposal too long for the card) open a modal with the click's
trigger id. The actor is the user of the signed payload; button values carry ids only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot import messages
from bot.blocks import answer_modal, confirm_modal, edit_modal, full_text_modal, reject_modal
from bot.blocks._parts import parse_block_id, prompt_markup
from bot.blocks._proposal import shows_in_full
from bot.blocks.checkpoint import (
    ALL_FIELDS,
    ANSWER,
    APPROVE,
    EDIT,
    OPEN_WEB,
    OPTION,
    PROMPT_FIELD,
    REJECT,
    REOPEN,
    REVIEW,
    SHOW_FULL,
    parse_show_full,
)
from bot.blocks.modals import again_modal
from bot.slack.deps import SlackDeps
from bot.slack.listeners._common import (
    OPEN_FORM,
    Body,
    form_fallback,
    open_view,
    refusal,
    seen_hash,
    team_of,
    user_of,
    where,
)
from bot.slack.listeners._runs import ask_inputs
from engine.commands import Decide
from engine.errors import Conflict, InvalidInput, NeedsDetail, NotAllowed, NotFound
from engine.model import Checkpoint, CheckpointStatus
from engine.shown import display_text, humanize, proposal_fields

__all__ = ["decide_and_tell", "register"]

_Form = Callable[[Checkpoint], dict[str, Any]]
_FORMS: dict[str, _Form] = {
    "edit": edit_modal,
    "reject": reject_modal,
    "answer": answer_modal,
    "confirm": confirm_modal,
    "review": lambda cp: confirm_modal(cp, choose=True),
}


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Register the checkpoint buttons."""

    async def approve(ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        cp = await _checkpoint(deps, body, str(action.get("value", "")))
        if cp is not None and cp.status is CheckpointStatus.open and not _saw_proposal(body, cp):
            await _form(deps, body, cp, "review")
        elif cp is not None and cp.confirm and cp.status is CheckpointStatus.open:
            await _form(deps, body, cp, "confirm")
        elif cp is not None:
            await _decide(deps, body, cp, "approve")

    async def option(ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        cp_id, _, choice = str(action.get("value", "")).partition("|")
        cp = await _checkpoint(deps, body, cp_id)
        if cp is not None and cp.status is CheckpointStatus.open and not _saw_proposal(body, cp):
            await _form(deps, body, cp, "review")
        elif cp is not None:
            await _decide(deps, body, cp, choice)

    def opens(form: str) -> Any:
        async def listener(ack: AsyncAck, body: Body, action: Body) -> None:
            await ack()
            cp = await _checkpoint(deps, body, str(action.get("value", "")))
            if cp is not None:
                await _form(deps, body, cp, form)

        listener.__name__ = f"open_{form}"
        return listener

    async def show_full(ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        cp_id, field = parse_show_full(str(action.get("value", "")))
        cp = await _checkpoint(deps, body, cp_id)
        if cp is not None:
            title, text = _full_text(cp, field)
            view = full_text_modal(title, text, markup=field == PROMPT_FIELD)
            await open_view(deps, body, view, fallback=_fallback(cp, "show"))

    async def open_form(ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        form, _, ref = str(action.get("value", "")).partition(":")
        if form == "run":
            try:
                workflow = deps.container.catalog.get(ref)
            except NotFound as exc:
                await deps.reply(user_of(body), messages.not_allowed(str(exc)), **where(body))
                return
            await ask_inputs(deps, body, workflow, {}, None)
        elif (cp := await _checkpoint(deps, body, ref)) is not None and form in _FORMS:
            await _form(deps, body, cp, form)

    async def reopen(ack: AsyncAck, body: Body, action: Body) -> None:
        # the form of an answer the verifier asked about, pre-filled with what was submitted
        await ack()
        cp_id, _, question_id = str(action.get("value", "")).partition("|")
        cp = await _checkpoint(deps, body, cp_id)
        if cp is None:
            return
        rows = await deps.container.store.list_deliveries(checkpoint_id=cp.id)
        asked = next((d for d in rows if d.id == question_id and d.target == f"user:{user_of(body)}"), None)
        view = again_modal(cp, asked.payload) if asked is not None else None
        form = str(asked.payload.get("action")) if asked is not None else ""
        if view is not None:
            await _form(deps, body, cp, form, lambda _: view)

    async def acknowledge(ack: AsyncAck) -> None:
        await ack()  # link buttons: Slack opens the URL itself, but still sends the click

    app.action(APPROVE)(approve)
    app.action(re.compile(rf"^{re.escape(OPTION)}(:\d+)?$"))(option)
    app.action(REJECT)(opens("reject"))
    app.action(EDIT)(opens("edit"))
    app.action(REVIEW)(opens("review"))
    app.action(ANSWER)(opens("answer"))
    app.action(re.compile(rf"^{re.escape(SHOW_FULL)}(:\d+)?$"))(show_full)
    app.action(OPEN_FORM)(open_form)
    app.action(REOPEN)(reopen)
    app.action(OPEN_WEB)(acknowledge)


async def _checkpoint(deps: SlackDeps, body: Body, cp_id: str) -> Checkpoint | None:
    try:
        return await deps.container.store.get_checkpoint(cp_id)
    except NotFound:
        await deps.reply(user_of(body), messages.checkpoint_not_found(), **where(body))
        return None


async def _decide(deps: SlackDeps, body: Body, cp: Checkpoint, action: str) -> None:
    """The hot path: decide and resume the run; refusals go back as an ephemeral message."""
    clicked = parse_block_id(str(((body.get("actions") or [{}])[0]).get("block_id", "")))
    command = Decide(
        checkpoint_id=cp.id,
        action=action,
        actor=user_of(body),
        channel="slack",
        seen=seen_hash(body),
        expected_version=clicked[1] if clicked and clicked[0] == cp.id else None,
        team=team_of(body),
    )
    await decide_and_tell(deps, cp, command, **where(body))


async def decide_and_tell(
    deps: SlackDeps, cp: Checkpoint, command: Decide, *, response_url: str | None, channel: str | None
) -> None:
    """After the ack: decide and resume the run; refusals go back to the person privately.

    When a model asks for more (``NeedsDetail``), the engine has queued the question to the
    person (in the thread of their copy of the request), so nothing more is sent here.
    """
    user = command.actor
    try:
        await deps.container.engine.decide(command)
    except NeedsDetail:
        pass
    except (Conflict, NotAllowed) as exc:
        await deps.reply(user, refusal(cp, exc), run_id=cp.run_id, response_url=response_url, channel=channel)
    except InvalidInput as exc:
        notice = messages.invalid_input(exc.errors or {"": str(exc)})
        await deps.reply(user, notice, response_url=response_url, channel=channel)


async def _form(deps: SlackDeps, body: Body, cp: Checkpoint, form: str, build: _Form | None = None) -> None:
    """Open a decision modal, unless the gate refuses the person or it is already decided."""
    user = user_of(body)
    notice = await _blocked(deps, body, cp, form)
    if notice is not None:
        await deps.reply(user, notice, run_id=cp.run_id, **where(body))
        return
    view = (build or _FORMS[form])(cp)
    await open_view(deps, body, view, fallback=_fallback(cp, form if form in _FORMS else "confirm"))


async def _blocked(deps: SlackDeps, body: Body, cp: Checkpoint, form: str) -> messages.Notice | None:
    """Why the person may not open this form (the decision gate, audited), or None."""
    action = _form_action(cp, form)
    command = Decide(
        checkpoint_id=cp.id, action=action, actor=user_of(body), channel="slack", team=team_of(body)
    )
    try:
        await deps.container.engine.may_decide(command)
    except (Conflict, NotAllowed) as exc:
        return refusal(cp, exc)
    return None


def _form_action(cp: Checkpoint, form: str) -> str:
    """The decision a form leads to, for the gate's check before it opens."""
    if form in {"confirm", "review"}:
        # the review form approves, or picks one of the options that pass the proposal on
        return "approve" if "approve" in cp.options or not cp.options else cp.options[0]
    return form


def _saw_proposal(body: Body, cp: Checkpoint) -> bool:
    """False when the click came from a copy of ``cp`` (a card, a Home item) that does not show
    its current proposal in full: one rendered before proposals were shown, or before an edit
    changed it. Such a click opens the whole proposal instead of deciding."""
    source = (body.get("message") or {}).get("blocks") or (body.get("view") or {}).get("blocks") or []
    ours = [b for b in source if isinstance(b, dict) and str(b.get("block_id", "")).endswith(f":{cp.id}")]
    return not ours or shows_in_full(ours, proposal_fields(cp))


def _fallback(cp: Checkpoint, form: str) -> dict[str, Any]:
    return form_fallback(form, cp.id, cp.title or "a request", run_id=cp.run_id, checkpoint_id=cp.id)


def _full_text(cp: Checkpoint, field: str) -> tuple[str, str]:
    if field == PROMPT_FIELD:
        return cp.title or "Request", prompt_markup(cp)
    if field == ALL_FIELDS:
        parts = [f"{humanize(k)}:\n{display_text(v)}" for k, v in cp.context.items()]
        return "All details", "\n\n".join(parts)
    return humanize(field), display_text(cp.context.get(field, ""))
