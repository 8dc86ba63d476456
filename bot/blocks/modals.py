"""Checkpoint modals: reject (reason), edit (schema form), answer, confirm word, full text.

``private_metadata`` carries ids only (checkpoint id + version), never state; the listener
re-reads the checkpoint and compares the version before resolving it.
"""

from __future__ import annotations

import json
from typing import Any

from bot.blocks import forms
from bot.blocks._kit import (
    SECTION_TEXT,
    VIEW_BLOCKS,
    VIEW_TITLE,
    Block,
    button,
    clip,
    escape,
    humanize,
    metadata,
    plain,
    section,
)
from bot.blocks._parts import OPEN_WEB
from engine.model import Checkpoint

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
]

REJECT_SUBMIT = "checkpoint.reject_submit"
EDIT_SUBMIT = "checkpoint.edit_submit"
ANSWER_SUBMIT = "checkpoint.answer_submit"
CONFIRM_SUBMIT = "checkpoint.confirm_submit"
REASON_BLOCK = "reason"
CONFIRM_BLOCK = "confirm"

# A view over 250 kB is refused (view_too_large); stay well under it, counting bytes.
_FULL_TEXT_BYTES = 200_000
_FULL_TEXT_CHUNK = 2900
_LONG_TEXT = 200


def modal(
    title: str,
    blocks: list[Block],
    *,
    callback_id: str = "",
    private_metadata: str = "",
    submit: str | None = None,
    close: str = "Cancel",
) -> dict[str, Any]:
    """A modal view with Slack's limits applied: title/submit/close <= 24, blocks <= 100."""
    view: dict[str, Any] = {
        "type": "modal",
        "title": plain(title, VIEW_TITLE),
        "close": plain(close, VIEW_TITLE),
        "blocks": blocks[:VIEW_BLOCKS],
    }
    if submit is not None:
        view["submit"] = plain(submit, VIEW_TITLE)
    if callback_id:
        view["callback_id"] = callback_id
    if private_metadata:
        view["private_metadata"] = private_metadata
    return view


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


def _summary(cp: Checkpoint) -> list[Block]:
    text = f"*{escape(cp.title)}*\n{escape(cp.prompt)}" if cp.title else escape(cp.prompt)
    return [section(clip(text, SECTION_TEXT), "summary")] if text.strip() else []


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
        [*_summary(cp), reason_block],
        callback_id=REJECT_SUBMIT,
        private_metadata=_ref(cp),
        submit="Reject",
    )


def _schema_of(cp: Checkpoint) -> dict[str, Any]:
    """The edit/answer schema; without one, a text field per proposed value."""
    if forms.schema_fields(cp.response_schema):
        return cp.response_schema
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


def edit_modal(cp: Checkpoint, *, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The schema form pre-filled with ``cp.proposed`` (or ``values`` on a re-render).

    Fields too long to edit in Slack are left out (with a note); a confirm word, when the
    checkpoint has one, is asked for here too, because an edit approves.
    """
    schema = form_schema(cp)
    kept = kept_fields(cp)
    fields = [f for f in forms.schema_fields(schema) if f not in kept]
    blocks = [*_summary(cp), *forms.schema_to_blocks(schema, values=values or cp.proposed, only=fields)]
    if kept:
        names = ", ".join(escape(humanize(k)) for k in kept)
        blocks.append(
            section(
                f"_{names}: too long to edit in Slack; kept as proposed (edit it in the console)._", "kept"
            )
        )
    if cp.confirm:
        blocks += _confirm_blocks(cp.confirm)
    return modal(
        "Edit and approve", blocks, callback_id=EDIT_SUBMIT, private_metadata=_ref(cp), submit="Approve"
    )


def answer_modal(cp: Checkpoint, *, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The answer form of an ``input`` checkpoint."""
    blocks = [*_summary(cp), *forms.schema_to_blocks(form_schema(cp), values=values or cp.proposed)]
    return modal("Answer", blocks, callback_id=ANSWER_SUBMIT, private_metadata=_ref(cp), submit="Send")


def confirm_modal(cp: Checkpoint, *, comment: str | None = None) -> dict[str, Any]:
    """Ask the approver to type ``cp.confirm`` (block ``confirm``) before approving.

    With ``comment`` (an approval the verifier asked about), the form also asks for a comment
    (block ``reason``) pre-filled with it; without ``cp.confirm`` it then asks for that alone.
    """
    blocks = _summary(cp)
    if cp.confirm or comment is None:
        blocks += _confirm_blocks(cp.confirm or "approve")
    if comment is not None:
        blocks.append(_text_block("Comment", "Why you approve; the reviewer reads it.", comment))
    return modal(
        "Confirm approval", blocks, callback_id=CONFIRM_SUBMIT, private_metadata=_ref(cp), submit="Approve"
    )


def _confirm_blocks(word: str) -> list[Block]:
    typed: Block = {
        "type": "input",
        "block_id": CONFIRM_BLOCK,
        "label": plain(clip(f"Type {word} to confirm", 2000)),
        "optional": False,
        "element": {"type": "plain_text_input", "action_id": "value", "max_length": 3000},
    }
    warning = section(
        clip(f":warning: This cannot be undone. Type *{escape(word)}* to approve.", SECTION_TEXT), "warn"
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


def full_text_modal(title: str, text: str, *, url: str | None = None) -> dict[str, Any]:
    """A read-only modal with a long text, split into sections, within the 250 kB view limit.

    Args:
        title: the modal title (cut to 24 characters).
        text: the full text.
        url: where the whole text can be read when it does not fit (e.g. the web UI).
    """
    blocks: list[Block] = []
    used = shown = 0
    while shown < len(text) and len(blocks) < VIEW_BLOCKS - 2:
        chunk = text[shown : shown + _FULL_TEXT_CHUNK]
        size = len(chunk.encode())
        if used + size > _FULL_TEXT_BYTES:
            break
        blocks.append({"type": "section", "block_id": f"t{len(blocks)}", "text": plain(chunk)})
        used, shown = used + size, shown + len(chunk)
    if not text:
        blocks.append(section("_(empty)_", "t0"))
    if shown < len(text):
        note = f"Showing the first {shown:,} of {len(text):,} characters."
        accessory = button("Open full text", OPEN_WEB, url=url) if url else None
        blocks.append(section(note, "more", accessory=accessory))
    return modal(title, blocks, close="Close")
