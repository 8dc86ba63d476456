"""Checkpoint messages: the open card with its buttons, and the decided card without them.

Pure functions returning ``chat.postMessage`` / ``chat.update`` arguments (``text`` + ``blocks``).
Button values carry ids only; block ids carry the checkpoint version so that an update after
a change uses new block ids (docs/slack-platform.md §1.8).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.blocks import _parts
from bot.blocks._kit import (
    FIELD_TEXT,
    MESSAGE_TEXT,
    SECTION_FIELDS,
    SECTION_TEXT,
    Block,
    actions,
    button,
    clip,
    context,
    display_value,
    escape,
    header,
    humanize,
    mention,
    mrkdwn,
    section,
)
from bot.blocks._parts import (
    ALL_FIELDS,
    ANSWER,
    APPROVE,
    EDIT,
    OPEN_WEB,
    OPTION,
    PROMPT_FIELD,
    REJECT,
    REOPEN,
    SHOW_FULL,
    parse_block_id,
)
from bot.blocks.modals import (
    CONFIRM_SUBMIT,
    EDIT_SUBMIT,
    REJECT_SUBMIT,
    answer_modal,
    checkpoint_ref,
    confirm_modal,
    edit_modal,
    full_text_modal,
    reject_modal,
)
from bot.blocks.run_inputs import RUN_INPUTS_SUBMIT, run_inputs_modal
from engine.model import Checkpoint, Decision, Run

__all__ = [
    "ALL_FIELDS",
    "ANSWER",
    "APPROVE",
    "CONFIRM_SUBMIT",
    "EDIT",
    "EDIT_SUBMIT",
    "OPEN_WEB",
    "OPTION",
    "PROMPT_FIELD",
    "REJECT",
    "REJECT_SUBMIT",
    "REOPEN",
    "RUN_INPUTS_SUBMIT",
    "SHOW_FULL",
    "answer_modal",
    "checkpoint_message",
    "checkpoint_ref",
    "confirm_modal",
    "decided_message",
    "edit_modal",
    "full_text_modal",
    "parse_block_id",
    "parse_show_full",
    "question_message",
    "reject_modal",
    "run_inputs_modal",
]

_HIGHLIGHTS = 5
_HIGHLIGHT_PREVIEW = 2800
_FIELD_PREVIEW = 300
_FIELD_SECTIONS = 2
_SHOW_BUTTONS = 4


def parse_show_full(value: str) -> tuple[str, str]:
    """``(checkpoint id, field)`` from a ``checkpoint.show_full`` button value."""
    cp_id, _, field = value.partition(":")
    return cp_id, field


def _show(cp: Checkpoint, field: str, text: str = "Show full", n: int = 0) -> Block:
    # action ids must be unique within a block: the n-th button gets its own suffix
    return button(text, f"{SHOW_FULL}:{n}" if n else SHOW_FULL, value=f"{cp.id}:{field}")


def _prompt(cp: Checkpoint, interactive: bool) -> list[Block]:
    if not cp.prompt:
        return []
    text = escape(cp.prompt)
    cut = len(text) > SECTION_TEXT
    accessory = _show(cp, PROMPT_FIELD) if cut and interactive else None
    return [section(text, _parts.block_id("prompt", cp), accessory=accessory)]


def _context(cp: Checkpoint, interactive: bool) -> list[Block]:
    """Highlighted fields first (own sections, bold labels), then the rest as section fields."""
    highlighted = [f for f in dict.fromkeys(cp.highlight) if f in cp.context][:_HIGHLIGHTS]
    blocks: list[Block] = []
    hidden: list[str] = []
    for n, field in enumerate(highlighted):
        text, cut = _parts.field_text(
            f":star: {humanize(field)}", cp.context[field], _HIGHLIGHT_PREVIEW, SECTION_TEXT
        )
        accessory = _show(cp, field) if cut and interactive else None
        blocks.append(section(text, _parts.block_id(f"hl{n}", cp), accessory=accessory))
    rest = [f for f in cp.context if f not in highlighted]
    shown = rest[: SECTION_FIELDS * _FIELD_SECTIONS]
    for n in range(0, len(shown), SECTION_FIELDS):
        fields = []
        for field in shown[n : n + SECTION_FIELDS]:
            text, cut = _parts.field_text(humanize(field), cp.context[field], _FIELD_PREVIEW, FIELD_TEXT)
            fields.append(mrkdwn(text, FIELD_TEXT))
            if cut:
                hidden.append(field)
        blocks.append({"type": "section", "block_id": _parts.block_id(f"ctx{n}", cp), "fields": fields})
    more = len(rest) - len(shown)
    if more > 0:
        blocks.append(context([f"+{more} more fields not shown here"], _parts.block_id("more", cp)))
    if interactive and (hidden or more > 0):
        buttons = [_show(cp, f, f"Show {humanize(f)}", n) for n, f in enumerate(hidden[:_SHOW_BUTTONS])]
        if more > 0 or len(hidden) > _SHOW_BUTTONS:
            buttons.append(_show(cp, ALL_FIELDS, "Show all details", len(buttons)))
        blocks.append(actions(buttons, _parts.block_id("show", cp)))
    return blocks


def _meta(
    cp: Checkpoint,
    run: Run | None,
    workflow_title: str,
    delegated_from: dict[str, str] | None,
    now: datetime | None,
) -> list[Block]:
    lines: list[str] = []
    if workflow_title or run is not None:
        run_part = f" · run `{escape(run.id)}`" if run is not None else ""
        lines.append(f"*Workflow:* {escape(workflow_title or (run.workflow_id if run else ''))}{run_part}")
    requester = cp.requester or (run.requester if run is not None else "")
    if requester:
        lines.append(f"Requested by {mention(requester)}")
    lines.extend(f"{mention(d)} on behalf of {mention(o)}" for d, o in (delegated_from or {}).items())
    if cp.due_at is not None:
        lines.append(_parts.due_text(cp.due_at, now))
    if cp.quorum > 1:
        lines.append(_parts.quorum_text(cp))
    return [context(lines, _parts.block_id("meta", cp))] if lines else []


def _fallback(cp: Checkpoint, workflow_title: str, prefix: str = "") -> str:
    title = _parts.title_text(cp, workflow_title)
    return clip(f"{prefix}{title}: {cp.prompt}" if cp.prompt else f"{prefix}{title}", MESSAGE_TEXT)


def checkpoint_message(
    cp: Checkpoint,
    *,
    run: Run | None = None,
    workflow_title: str = "",
    delegated_from: dict[str, str] | None = None,
    now: datetime | None = None,
    web_url: str | None = None,
) -> dict[str, Any]:
    """The open checkpoint card.

    Args:
        cp: the checkpoint to show.
        run: its run, for the workflow line and the requester.
        workflow_title: the workflow's title.
        delegated_from: delegate user -> the user they stand in for.
        now: the current time, for "Due in 2h"; without it only the due time is shown.
        web_url: a link to the checkpoint in the web UI.

    Returns:
        ``{"text": fallback (<= 4000), "blocks": [...] (<= 50)}``.
    """
    blocks = [header(_parts.title_text(cp, workflow_title), _parts.block_id("header", cp))]
    blocks += _prompt(cp, True)
    blocks += _context(cp, True)
    blocks += _meta(cp, run, workflow_title, delegated_from, now)
    elements = _parts.option_buttons(cp)
    if web_url:
        elements.append(button("Open in web", OPEN_WEB, url=web_url))
    if elements:
        blocks.append(actions(elements, _parts.block_id("actions", cp)))
    return {"text": _fallback(cp, workflow_title), "blocks": blocks}


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = []
    for field in dict.fromkeys([*before, *after]):
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        old_text = clip(escape(display_value(old)), 400) if field in before else "(none)"
        new_text = clip(escape(display_value(new)), 400) if field in after else "(removed)"
        lines.append(f"*{escape(humanize(field))}:* ~{old_text}~ → {new_text}")
    return lines


def _diff_blocks(cp: Checkpoint, decision: Decision, before: dict[str, Any] | None) -> list[Block]:
    if before is not None:
        lines = _diff(before, decision.data)
    else:
        pairs = {
            k: v for k, v in decision.diff.items() if isinstance(v, dict) and {"before", "after"} <= v.keys()
        }
        lines = _diff({k: v["before"] for k, v in pairs.items()}, {k: v["after"] for k, v in pairs.items()})
    if not lines:
        return []
    return [section(clip("*Changes*\n" + "\n".join(lines), SECTION_TEXT), _parts.block_id("diff", cp))]


def decided_message(
    cp: Checkpoint,
    decision: Decision,
    *,
    before: dict[str, Any] | None = None,
    flagged: str | None = None,
) -> dict[str, Any]:
    """The card after a decision: no buttons, who/what/when, the comment and the edits.

    Args:
        cp: the checkpoint as it was shown.
        decision: the decision that resolved it.
        before: the proposed values, to show edited fields as before -> after.
        flagged: why the verifier flagged the decision (``verify: {on_fail: flag}``).

    Returns:
        ``{"text", "blocks"}`` for ``chat.update``.
    """
    line = _parts.decision_line(decision)
    blocks = [header(_parts.title_text(cp), _parts.block_id("header", cp))]
    blocks += _prompt(cp, False)
    blocks += _context(cp, False)
    blocks.append(section(line, _parts.block_id("decision", cp)))
    if decision.comment:
        quoted = "\n".join(f"> {ln}" for ln in escape(decision.comment).splitlines() or [""])
        blocks.append(section(clip(quoted, SECTION_TEXT), _parts.block_id("comment", cp)))
    blocks += _diff_blocks(cp, decision, before)
    if flagged:
        note = f":triangular_flag_on_post: *Flagged by the reviewer:* {escape(flagged)}"
        blocks.append(section(clip(note, SECTION_TEXT), _parts.block_id("flagged", cp)))
        line = f"{line} (flagged)"
    return {"text": clip(f"{line} — {_fallback(cp, '')}", MESSAGE_TEXT), "blocks": blocks}


_ASKED = {"reject": "rejection", "edit": "edit", "answer": "answer", "approve": "approval"}


def question_message(cp: Checkpoint, question: str, *, action: str, reopen: str | None) -> dict[str, Any]:
    """The verifier's question to the person whose answer did not count yet.

    Args:
        cp: the open checkpoint.
        question: what the verifier asks.
        action: what the person submitted (reject, edit, answer, approve or a custom option).
        reopen: the ``checkpoint.reopen`` button value (ids only), or None when there is no
            form to reopen (a custom option: choose again on the request).

    Returns:
        ``{"text", "blocks"}`` for a thread reply or a DM.
    """
    what = _ASKED.get(action, f"choice “{humanize(action)}”")
    title = escape(cp.title or cp.node_id)
    intro = f":mag: Before your {what} of *{title}* counts: {escape(question)}"
    blocks: list[Block] = [section(clip(intro, SECTION_TEXT), _parts.block_id("question", cp))]
    if reopen is not None:
        blocks.append(actions([button("Answer again", REOPEN, value=reopen, style="primary")], "reopen"))
    else:
        blocks.append(context(["The request is still open: choose again on it."], "reopen"))
    text = f"Before your {what} of {cp.title or cp.node_id} counts: {question}"
    return {"text": clip(text, MESSAGE_TEXT), "blocks": blocks}
