"""Views shared by the checkpoint modals (private): the modal frame, the summary, values in full,
the "too long for Slack" notice and the read-only full-text view."""

from __future__ import annotations

import json
from typing import Any

from bot.blocks._kit import (
    SECTION_TEXT,
    VIEW_BLOCKS,
    VIEW_TITLE,
    Block,
    button,
    clip,
    data,
    ident,
    plain,
    section,
)
from bot.blocks._parts import OPEN_WEB, prompt_markup
from bot.blocks._proposal import view_blocks
from engine.model import Checkpoint
from engine.shown import ShownField, escape_markup

__all__ = ["FULL_TEXT_BYTES", "full_text_modal", "in_full", "modal", "summary", "too_long_modal"]

# A view over 250 kB is refused (view_too_large); stay well under it, counting bytes.
FULL_TEXT_BYTES = 200_000
_FULL_TEXT_CHUNK = 2900


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


def summary(cp: Checkpoint) -> list[Block]:
    # the title is data; the prompt is markup whose data was made inert when it was rendered
    title = f"*{escape_markup(cp.title)}*" if cp.title else ""
    text = "\n".join(t for t in (title, prompt_markup(cp)) if t)
    return [section(clip(text, SECTION_TEXT), "summary")] if text.strip() else []


def in_full(fields: list[ShownField], heading: str, around: list[Block]) -> list[Block] | None:
    """``fields`` in full under ``heading``, with room left for the ``around`` blocks and the
    few this module adds (confirm word, choice, comment); None when they do not fit."""
    if not fields:
        return []
    room = VIEW_BLOCKS - len(around) - 5
    size = FULL_TEXT_BYTES - len(json.dumps(around).encode())
    shown = view_blocks(fields, "p", blocks=room - 1, size=size)
    return None if shown is None else [section(heading, "proposal"), *shown]


def too_long_modal(cp: Checkpoint) -> dict[str, Any]:
    """What opens instead of a decision form when its values do not fit a Slack modal in full."""
    text = (
        f"The values of *{escape_markup(cp.title or cp.node_id)}* are too long to show in full in "
        "Slack, so it cannot be decided here. Open it in the Signoff web console, or decide it "
        f"with `signoff respond {ident(cp.id)}`, which prints every value first."
    )
    return modal("Too long for Slack", [section(clip(text, SECTION_TEXT), "too_long")], close="Close")


def full_text_modal(title: str, text: str, *, url: str | None = None, markup: bool = False) -> dict[str, Any]:
    """A read-only modal with a long text, split into sections, within the 250 kB view limit.

    Args:
        title: the modal title (cut to 24 characters).
        text: the full text: data (shown as plain text), or with ``markup`` Slack markup whose
            data is already inert (a prompt).
        url: where the whole text can be read when it does not fit (e.g. the web UI).
        markup: ``text`` is Slack markup.
    """
    blocks: list[Block] = []
    used = shown = 0
    while shown < len(text) and len(blocks) < VIEW_BLOCKS - 2:
        chunk = text[shown : shown + _FULL_TEXT_CHUNK]
        size = len(chunk.encode())
        if used + size > FULL_TEXT_BYTES:
            break
        body = {"type": "mrkdwn", "text": chunk} if markup else data(chunk)
        blocks.append({"type": "section", "block_id": f"t{len(blocks)}", "text": body})
        used, shown = used + size, shown + len(chunk)
    if not text:
        blocks.append(section("_(empty)_", "t0"))
    if shown < len(text):
        note = f"Showing the first {shown:,} of {len(text):,} characters."
        accessory = button("Open full text", OPEN_WEB, url=url) if url else None
        blocks.append(section(note, "more", accessory=accessory))
    return modal(title, blocks, close="Close")
