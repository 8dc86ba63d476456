"""Modal submissions: validated on the server, errors keyed by block id, then decided.

A submission is the one place where work happens before the ack (invariant 11): the answer
must be validated, and the decision recorded, to know whether to show field errors. The
run is driven only after the ack.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot import messages
from bot.blocks import forms
from bot.blocks.checkpoint import (
    CONFIRM_SUBMIT,
    EDIT_SUBMIT,
    REJECT_SUBMIT,
    RUN_INPUTS_SUBMIT,
    checkpoint_ref,
)
from bot.blocks.modals import (
    ANSWER_SUBMIT,
    CHOICE_BLOCK,
    CONFIRM_BLOCK,
    REASON_BLOCK,
    form_schema,
    kept_fields,
    modal,
)
from bot.blocks.run_inputs import read_run_metadata
from bot.slack.deps import SlackDeps
from bot.slack.listeners._common import Body, refusal, seen_hash, team_of, user_of
from bot.slack.listeners._runs import start_run
from bot.slack.listeners.checkpoints import decide_and_tell
from engine.commands import Decide
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.model import Checkpoint

__all__ = ["register"]

_OURS = re.compile(r"^(checkpoint|run)\.")


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Register the submissions of the checkpoint and run-inputs modals."""

    def decides(action: str) -> Any:
        async def listener(ack: AsyncAck, body: Body, view: Body) -> None:
            cp = await _checkpoint(deps, ack, view)
            if cp is None:
                return
            values = view.get("state", {}).get("values", {})
            command = _command(cp, action, user_of(body), values, seen_hash(body), team_of(body))
            ref = checkpoint_ref(str(view.get("private_metadata", "")))
            if isinstance(command, Decide) and ref is not None:
                command = command.model_copy(update={"expected_version": ref[1]})
            if isinstance(command, dict):
                await ack(response_action="errors", errors=command)
                return
            await _submit(deps, ack, cp, command, values)

        listener.__name__ = f"submit_{action}"
        return listener

    async def run_inputs(ack: AsyncAck, body: Body, view: Body) -> None:
        workflow_id, channel, kept = read_run_metadata(str(view.get("private_metadata", "")))
        values = view.get("state", {}).get("values", {})
        try:
            workflow = deps.container.catalog.get(workflow_id)
        except NotFound as exc:
            await ack(response_action="update", view=_notice_view(messages.not_allowed(str(exc))))
            return
        data, errors = forms.parse_submission(workflow.inputs, values, base=kept)
        try:
            data = data if errors else deps.container.engine.check_inputs(workflow, data)
        except InvalidInput as exc:
            errors = exc.errors or {"": str(exc)}
        if errors:
            await ack(response_action="errors", errors=_keyed(errors, values))
            return
        await ack()
        await start_run(deps, body, workflow, data, channel=channel)

    async def closed(ack: AsyncAck) -> None:
        await ack()  # nothing to undo: a closed form decided nothing

    app.view(EDIT_SUBMIT)(decides("edit"))
    app.view(ANSWER_SUBMIT)(decides("answer"))
    app.view(REJECT_SUBMIT)(decides("reject"))
    app.view(CONFIRM_SUBMIT)(decides("approve"))
    app.view(RUN_INPUTS_SUBMIT)(run_inputs)
    app.view_closed(_OURS)(closed)


async def _checkpoint(deps: SlackDeps, ack: AsyncAck, view: Body) -> Checkpoint | None:
    ref = checkpoint_ref(str(view.get("private_metadata", "")))
    try:
        if ref is not None:
            return await deps.container.store.get_checkpoint(ref[0])
    except NotFound:
        pass
    await ack(response_action="update", view=_notice_view(messages.checkpoint_not_found()))
    return None


def _text(values: Body, block_id: str) -> str:
    return str(((values.get(block_id) or {}).get("value") or {}).get("value") or "").strip()


def _chosen(values: Body) -> str:
    selected = ((values.get(CHOICE_BLOCK) or {}).get("value") or {}).get("selected_option") or {}
    return str(selected.get("value") or "")


def _command(
    cp: Checkpoint, action: str, user: str, values: Body, seen: str | None, team: str | None
) -> Decide | dict[str, str]:
    """The decision a form asks for, or the field errors keyed by block id."""
    base: dict[str, Any] = {
        "checkpoint_id": cp.id,
        "action": action,
        "actor": user,
        "channel": "slack",
        "seen": seen,
        "team": team,
    }
    if action == "reject":
        reason = _text(values, REASON_BLOCK)
        return Decide(**base, comment=reason) if reason else {REASON_BLOCK: "Required"}
    if action == "approve":
        comment = _text(values, REASON_BLOCK) or None  # asked for when the verifier questioned an approval
        # "Review and approve…" with custom options: the person chose one (the engine checks it is offered)
        base["action"] = _chosen(values) or action
        return Decide(**base, confirm=_text(values, CONFIRM_BLOCK), comment=comment)
    data, errors = forms.parse_submission(form_schema(cp), values, base=kept_fields(cp))
    if errors:
        return _keyed(errors, values)
    return Decide(**base, data=data, confirm=_text(values, CONFIRM_BLOCK) or None)


async def _submit(deps: SlackDeps, ack: AsyncAck, cp: Checkpoint, command: Decide, values: Body) -> None:
    engine = deps.container.engine
    try:
        # an answer a model checks first is only validated here: the model is called after the ack
        checked_later = await engine.check(command)
        # a flagging check calls a model too: it runs after the ack, below
        decision = None if checked_later else await engine.decide(command, drive=False, verify=False)
    except InvalidInput as exc:
        await ack(response_action="errors", errors=_keyed(exc.errors or {"": str(exc)}, values))
        return
    except NotAllowed as exc:
        if CONFIRM_BLOCK in values and str(exc).startswith("type "):
            await ack(
                response_action="errors", errors={CONFIRM_BLOCK: messages.confirm_mismatch(cp.confirm or "")}
            )
            return
        await ack(response_action="update", view=_notice_view(refusal(cp, exc)))
        return
    except Conflict as exc:
        await ack(response_action="update", view=_notice_view(refusal(cp, exc)))
        return
    await ack()
    if checked_later:
        await decide_and_tell(deps, cp, command, response_url=None, channel=None)  # a modal has neither
    elif decision is not None:
        await engine.flag_check(decision)
        await engine.drive(cp.run_id)


def _keyed(errors: dict[str, str], values: Body) -> dict[str, str]:
    """Field errors keyed by the input block ids of the submitted view.

    Errors about a field that is not in the form (or about the whole answer) go on the first
    input block, because Slack only shows errors next to an input.
    """
    blocks = list(values)
    out: dict[str, str] = {}
    for field, message in errors.items():
        block = field if field in values else forms.block_id_for(field) if field else ""
        if block not in values:
            block = blocks[0] if blocks else field
            message = f"{field}: {message}" if field else message
        out.setdefault(block, message)
    return out


def _notice_view(notice: messages.Notice) -> dict[str, Any]:
    section = {"type": "section", "block_id": "notice", "text": {"type": "mrkdwn", "text": notice.text}}
    return modal("Signoff", [section], close="Close")
