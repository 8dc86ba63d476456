"""Messages whose words come from the engine and from data: notices to a requester (a run ended,
a decision was made) and delivery problems.

Their text is data from end to end (titles, names, reasons, comments), so it is shown as plain
text blocks, exactly as it is; the notification ``text`` Slack also needs is the same text made
inert with ``engine.shown.escape_markup``.
"""

from __future__ import annotations

from typing import Any

from bot.blocks._kit import MESSAGE_TEXT, SECTION_TEXT, Block, actions, button, clip, data
from engine.shown import escape_markup

__all__ = ["RETRY", "notice_message"]

RETRY = "run.retry"


def notice_message(text: str, detail: str | None = None, *, retry_run: str | None = None) -> dict[str, Any]:
    """``{"text", "blocks"}``: ``text`` as a plain-text section, ``detail`` (a comment, a
    reason) under it as a second one; ``retry_run``: a Retry button that reruns that run."""
    blocks: list[Block] = [{"type": "section", "block_id": "notice", "text": data(text, SECTION_TEXT)}]
    fallback = escape_markup(text)
    if detail:
        blocks.append({"type": "section", "block_id": "detail", "text": data(detail, SECTION_TEXT)})
        fallback += f" — {escape_markup(detail)}"
    if retry_run:
        blocks.append(actions([button("Retry", RETRY, value=retry_run, style="primary")], "retry"))
    return {"text": clip(fallback, MESSAGE_TEXT), "blocks": blocks}
