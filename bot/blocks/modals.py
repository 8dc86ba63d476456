"""Checkpoint modals: reject (reason), edit (schema form), answer, review/confirm, full text.

``private_metadata`` carries ids only (checkpoint id + version), never state; the listener
re-reads the checkpoint and compares the version before resolving it.

A modal that decides shows every value the decision passes on, in full: the review/confirm
modal the whole proposal, the edit and answer forms the values they keep without an input.
When they do not fit a modal, the modal says so and offers no decision.
"""

from __future__ import annotations

import json
from typing import Any

from bot.blocks import forms
from bot.blocks._kit import (
    OPTION_TEXT,
    OPTION_VALUE,
    SECTION_TEXT,
    SMALL_OPTIONS,
    Block,
    clip,
    metadata,
    plain,
    section,
)
from bot.blocks._views import full_text_modal, in_full, modal, summary, too_long_modal
from engine.model import Checkpoint
from engine.sensitive import is_sensitive
from engine.shown import ShownField, escape_markup, humanize, proposal_fields

__all__ = [
    "ANSWER_SUBMIT",
    "CONFIRM_SUBMIT",
    "EDIT_SUBMIT",
    "REJECT_SUBMIT",
    "again_modal",
    "answer_modal",
    "checkpoint_ref",
    "confirm_modal",
    "edit_modal",
    "full_text_modal",
    "modal",
    "reject_modal",
    "too_long_modal",
]

REJECT_SUBMIT = "checkpoint.reject_submit"
EDIT_SUBMIT = "checkpoint.edit_submit"
ANSWER_SUBMIT = "checkpoint.answer_submit"
CONFIRM_SUBMIT = "checkpoint.confirm_submit"
REASON_BLOCK = "reason"
CONFIRM_BLOCK = "confirm"
CHOICE_BLOCK = "choice"

_LONG_TEXT = 200
_BUILT_IN = ("approve", "reject", "edit")


def _ref(cp: Checkpoint) -> str:
    return metadata({"checkpoint_id": cp.id, "version": cp.version})


def checkpoint_ref(private_metadata: str) -> tuple[str, int] | None:
    """``(checkpoint id, version)`` from a checkpoint modal's ``private_metadata``, else None."""
    try:
        data = json.loads(private_metadata)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("checkpoint_id"), str):
        return None
    version = data.get("version")
    return data["checkpoint_id"], version if isinstance(version, int) else 0


def _text_block(label: str, hint: str, value: str | None) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 3000}
    if value:
        element["initial_value"] = value[:3000]
    return {
        "type": "input",
        "block_id": REASON_BLOCK,
        "label": plain(label),
        "hint": plain(hint),
        "optional": False,
        "element": element,
    }


def reject_modal(cp: Checkpoint, *, reason: str | None = None) -> dict[str, Any]:
    """Ask for the reason of a rejection (block ``reason``, required), pre-filled with ``reason``."""
    reason_block = _text_block("Reason", "The requester sees this reason.", reason)
    return modal(
        "Reject",
        [*summary(cp), reason_block],
        callback_id=REJECT_SUBMIT,
        private_metadata=_ref(cp),
        submit="Reject",
    )


def _schema_of(cp: Checkpoint) -> dict[str, Any]:
    """The edit/answer schema; without one, a text field per proposed value.

    A sensitive field (``engine.sensitive``) is never pre-filled; left empty, the proposed value
    stays, so it is not required in the form.
    """
    if forms.schema_fields(cp.response_schema):
        schema = cp.response_schema
        sensitive = {f for f, prop in forms.schema_fields(schema).items() if is_sensitive(prop)}
        if sensitive and cp.proposed.keys() & sensitive:
            required = [f for f in schema.get("required") or [] if f not in sensitive or f not in cp.proposed]
            return {**schema, "required": required}
        return schema
    props: dict[str, Any] = {}
    for field, value in cp.proposed.items():
        if isinstance(value, bool):
            props[field] = {"type": "boolean"}
        elif isinstance(value, int | float):
            props[field] = {"type": "integer" if isinstance(value, int) else "number"}
        elif isinstance(value, str):
            props[field] = {"type": "string", "x-multiline": len(value) > _LONG_TEXT or "\n" in value}
        else:
            props[field] = {}
    return {"type": "object", "properties": props}


def form_schema(cp: Checkpoint) -> dict[str, Any]:
    """The schema the edit/answer modals were built from (pass it to ``parse_submission``)."""
    if cp.kind == "input" and not forms.schema_fields(cp.response_schema) and not cp.proposed:
        return {
            "type": "object",
            "required": ["answer"],
            "properties": {"answer": {"type": "string", "x-multiline": True}},
        }
    return _schema_of(cp)


_INPUT_MAX = 3000  # Slack's limit on a plain_text_input's value


def kept_fields(cp: Checkpoint) -> dict[str, Any]:
    """Proposed values too long for a Slack text input (3,000 characters): not in the edit form,
    and kept as proposed when it is submitted, so that nothing is cut silently."""
    return {k: v for k, v in cp.proposed.items() if isinstance(v, str) and len(v) > _INPUT_MAX}


def _unedited(cp: Checkpoint, editable: list[str]) -> list[ShownField]:
    """Proposed values the form has no input for: passed on as they are, so shown in full."""
    return [f for f in proposal_fields(cp) if f.field not in editable]


def _form_modal(
    cp: Checkpoint, title: str, callback_id: str, submit: str, values: dict[str, Any] | None
) -> dict[str, Any]:
    schema = form_schema(cp)
    kept = kept_fields(cp)
    editable = [f for f in forms.schema_fields(schema) if f not in kept]
    prefill = values or _not_sensitive(cp.proposed, schema)
    blocks = [*summary(cp), *forms.schema_to_blocks(schema, values=prefill, only=editable)]
    heading = (
        "*Passed on unchanged* (too long to edit in Slack, or not in the form; edit them in the console):"
    )
    unedited = in_full(_unedited(cp, editable), heading, blocks)
    if unedited is None:
        return too_long_modal(cp)
    blocks += unedited
    if cp.confirm and callback_id == EDIT_SUBMIT:
        blocks += _confirm_blocks(cp.confirm)
    return modal(title, blocks, callback_id=callback_id, private_metadata=_ref(cp), submit=submit)


def _not_sensitive(values: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    props = forms.schema_fields(schema)
    return {k: v for k, v in values.items() if not is_sensitive(props.get(k))}


def edit_modal(cp: Checkpoint, *, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The schema form pre-filled with ``cp.proposed`` (or ``values`` on a re-render).

    Values the form has no input for (too long for a Slack input, or not in the schema) are
    shown in full and passed on as proposed; a confirm word, when the checkpoint has one, is
    asked for here too, because an edit approves.
    """
    return _form_modal(cp, "Edit and approve", EDIT_SUBMIT, "Approve", values)


def answer_modal(cp: Checkpoint, *, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The answer form of an ``input`` checkpoint (values it keeps shown in full, as in ``edit_modal``)."""
    return _form_modal(cp, "Answer", ANSWER_SUBMIT, "Send", values)


def _choices(cp: Checkpoint) -> list[str]:
    """The decisions that pass the proposal on: approve and the custom options."""
    approve = ["approve"] if "approve" in cp.options and cp.kind != "input" else []
    return approve + [o for o in cp.options if o not in _BUILT_IN]


def _choice_block(options: list[str]) -> Block:
    items = [{"text": plain(humanize(o), OPTION_TEXT), "value": o[:OPTION_VALUE]} for o in options]
    element: Block = {
        "type": "radio_buttons" if len(items) <= SMALL_OPTIONS else "static_select",
        "action_id": "value",
        "options": items[:100],
        "initial_option": items[0],
    }
    return {
        "type": "input",
        "block_id": CHOICE_BLOCK,
        "label": plain("Your decision"),
        "optional": False,
        "element": element,
    }


def confirm_modal(cp: Checkpoint, *, comment: str | None = None, choose: bool = False) -> dict[str, Any]:
    """The whole proposal, and the Approve that passes it on.

    Opened by Approve when the checkpoint asks for a confirm word (block ``confirm``), by
    "Review and approve…" when the card could not show the proposal in full (``choose``: a
    choice between Approve and the custom options, block ``choice``), and again when the
    verifier asked about an approval (``comment``: block ``reason``, pre-filled).
    """
    blocks = summary(cp)
    shown = in_full(proposal_fields(cp), "*Approve passes on:*", blocks)
    if shown is None:
        return too_long_modal(cp)
    blocks += shown
    # anything but a plain approval is chosen in the form, so the submission says which
    options = _choices(cp) if choose else []
    choice = bool(options) and options != ["approve"]
    if choice:
        blocks.append(_choice_block(options))
    if cp.confirm:
        blocks += _confirm_blocks(cp.confirm)
    if comment is not None:
        blocks.append(_text_block("Comment", "Why you approve; the reviewer reads it.", comment))
    title = "Confirm approval" if cp.confirm or comment is not None else "Review and approve"
    submit = "Submit" if choice else "Approve"
    return modal(title, blocks, callback_id=CONFIRM_SUBMIT, private_metadata=_ref(cp), submit=submit)


def _confirm_blocks(word: str) -> list[Block]:
    typed: Block = {
        "type": "input",
        "block_id": CONFIRM_BLOCK,
        "label": plain(clip(f"Type {word} to confirm", 2000)),
        "optional": False,
        "element": {"type": "plain_text_input", "action_id": "value", "max_length": 3000},
    }
    warning = section(
        clip(f":warning: This cannot be undone. Type *{escape_markup(word)}* to approve.", SECTION_TEXT),
        "warn",
    )
    return [warning, typed]


def again_modal(cp: Checkpoint, asked: dict[str, Any]) -> dict[str, Any] | None:
    """The form of an answer the verifier asked about, pre-filled with what was submitted.

    Args:
        cp: the open checkpoint.
        asked: the ``checkpoint_question`` delivery's payload (action, data, comment).

    Returns:
        The modal, or None for an action that has no form (a custom option).
    """
    action, comment = asked.get("action"), asked.get("comment")
    data = asked.get("data") if isinstance(asked.get("data"), dict) else None
    if action == "reject":
        return reject_modal(cp, reason=str(comment or ""))
    if action == "edit":
        return edit_modal(cp, values=data)
    if action == "answer":
        return answer_modal(cp, values=data)
    if action == "approve":
        return confirm_modal(cp, comment=str(comment or ""))
    return None
