"""Checkpoint messages: the open card with its buttons, and the decided card without them.

Pure functions returning ``chat.postMessage`` / ``chat.update`` arguments (``text`` + ``blocks``).
Button values carry ids only; block ids carry the checkpoint version so that an update after
a change uses new block ids (docs/slack-platform.md §1.8).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.blocks import _card, _parts
from bot.blocks._kit import (
    MESSAGE_TEXT,
    SECTION_TEXT,
    Block,
    actions,
    button,
    clip,
    context,
    header,
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
    REVIEW,
    SHOW_FULL,
    parse_block_id,
)
from bot.blocks._proposal import fits_card
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
from engine.shown import escape_markup, humanize, proposal_fields

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
    "REVIEW",
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


def parse_show_full(value: str) -> tuple[str, str]:
    """``(checkpoint id, field)`` from a ``checkpoint.show_full`` button value."""
    cp_id, _, field = value.partition(":")
    return cp_id, field


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

    Every field Approve passes on is shown in full, labelled, as plain text. When they do not
    all fit, Approve and the custom options give way to "Review and approve…", which opens them
    in full (``confirm_modal``).

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
    proposal = proposal_fields(cp)
    in_full = fits_card(proposal)
    blocks = [header(_parts.title_text(cp, workflow_title), _parts.block_id("header", cp))]
    blocks += _card.prompt_blocks(cp, True)
    blocks += _card.context_blocks(cp, True)
    blocks += _card.proposal_blocks(cp, proposal, in_full)
    blocks += _card.meta_blocks(cp, run, workflow_title, delegated_from, now)
    elements = _parts.option_buttons(cp, review=not in_full)
    if web_url:
        elements.append(button("Open in web", OPEN_WEB, url=web_url))
    if elements:
        blocks.append(actions(elements, _parts.block_id("actions", cp)))
    return {"text": _card.fallback(cp, workflow_title), "blocks": blocks}


def decided_message(
    cp: Checkpoint,
    decision: Decision,
    *,
    before: dict[str, Any] | None = None,
    flagged: str | None = None,
) -> dict[str, Any]:
    """The card after a decision: no buttons, what was passed on, who/what/when, the comment and
    the edits.

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
    blocks += _card.prompt_blocks(cp, False)
    blocks += _card.context_blocks(cp, False)
    blocks += _card.passed_on_blocks(cp, decision)
    blocks.append(section(line, _parts.block_id("decision", cp)))
    if decision.comment:
        quoted = "\n".join(f"> {escape_markup(ln)}" for ln in decision.comment.splitlines() or [""])
        blocks.append(section(clip(quoted, SECTION_TEXT), _parts.block_id("comment", cp)))
    blocks += _card.diff_blocks(cp, decision, before)
    if flagged:
        note = f":triangular_flag_on_post: *Flagged by the reviewer:* {escape_markup(flagged)}"
        blocks.append(section(clip(note, SECTION_TEXT), _parts.block_id("flagged", cp)))
        line = f"{line} (flagged)"
    return {"text": clip(f"{line} — {_card.fallback(cp, '')}", MESSAGE_TEXT), "blocks": blocks}


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
    what = escape_markup(what)
    title = escape_markup(cp.title or cp.node_id)
    intro = f":mag: Before your {what} of *{title}* counts: {escape_markup(question)}"
    blocks: list[Block] = [section(clip(intro, SECTION_TEXT), _parts.block_id("question", cp))]
    if reopen is not None:
        blocks.append(actions([button("Answer again", REOPEN, value=reopen, style="primary")], "reopen"))
    else:
        blocks.append(context(["The request is still open: choose again on it."], "reopen"))
    text = f"Before your {what} of {title} counts: {escape_markup(question)}"
    return {"text": clip(text, MESSAGE_TEXT), "blocks": blocks}
