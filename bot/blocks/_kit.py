"""Small Block Kit building helpers shared by the renderers (private).

Every helper clips text to the limit Slack documents for that spot, because Slack rejects the
whole message or view when a single field is one character too long.

Data never becomes markup: a value is shown as ``plain_text`` (``data``), and data that has to
sit inside a sentence of Slack markup goes through ``engine.shown.escape_markup`` first. Only
well-formed Slack ids become mentions (``mention``) and only engine ids are shown as they are
(``ident``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from engine.shown import escape_markup

Block = dict[str, Any]

# Limits from docs/slack-platform.md §1.7 and §1.8.
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
MESSAGE_TEXT = 4000
HEADER_TEXT = 150
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
LABEL_TEXT = 2000
PLACEHOLDER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
OPTION_TEXT = 75
OPTION_VALUE = 75
OPTIONS = 100
SMALL_OPTIONS = 10
ACTIONS_ELEMENTS = 25
CONTEXT_ELEMENTS = 10
VIEW_TITLE = 24
PRIVATE_METADATA = 3000
ID_TEXT = 255

ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    # Never leave half an escaped entity (``&am``) behind: Slack would show it literally.
    amp = cut.rfind("&", max(len(cut) - 4, 0))
    if amp >= 0 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def plain(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    """A plain_text object (emoji on) for the product's own words, clipped to ``limit``; Slack
    refuses empty text."""
    return {"type": "plain_text", "text": clip(text or " ", limit), "emoji": True}


def data(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    """A plain_text object for data: never formatted, never a mention or a link, no emoji codes."""
    return {"type": "plain_text", "text": clip(text or " ", limit), "emoji": False}


def mrkdwn(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    """A mrkdwn text object clipped to ``limit``."""
    return {"type": "mrkdwn", "text": clip(text or " ", limit)}


# Slack ids: users U…/W…, user groups S…, channels C…/G…; engine ids (run_…, cp_…) and
# workflow ids: lower-case words joined by _ or -, which nothing in Slack markup formats
# inside a code span
_USER_ID = re.compile(r"[UW][A-Z0-9]+")
_GROUP_ID = re.compile(r"S[A-Z0-9]+")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]+")
_ENGINE_ID = re.compile(r"[a-z0-9]+(?:[_-][a-z0-9]+)*")


def mention(ref: str) -> str:
    """A Slack mention of a user (U…/W…), a user group (S…) or a channel (C…/G…).

    Only a well-formed Slack id becomes a mention; anything else (a CLI user name, a forged
    ``<!channel>``) is shown as escaped text.
    """
    if not ref:
        return "someone"
    if _USER_ID.fullmatch(ref):
        return f"<@{ref}>"
    if _GROUP_ID.fullmatch(ref):
        return f"<!subteam^{ref}>"
    if _CHANNEL_ID.fullmatch(ref):
        return f"<#{ref}>"
    return escape_markup(ref)


def principal(ref: str) -> str:
    """How a principal (``user:U1``, ``group:S1``, ``channel:C1``, ``role:manager``) reads in
    Slack markup: a mention for a well-formed Slack id, escaped text otherwise."""
    kind, _, name = ref.partition(":")
    if kind in {"user", "group", "channel"} and name:
        return mention(name)
    if kind == "role" and name:
        return f"the {escape_markup(name)} role"
    return mention(ref)


def ident(ref: str) -> str:
    """An id as it is (``run_3f2a``, ``auto_reject``), so it can be read and copied into a command;
    anything but lower-case words joined by ``_`` or ``-`` is escaped. Slack formats no ``_``
    inside a word, nor anything inside a code span."""
    return ref if _ENGINE_ID.fullmatch(ref) else escape_markup(ref)


def header(text: str, block_id: str) -> Block:
    """A header block (plain text, at most 150 characters)."""
    return {"type": "header", "block_id": block_id, "text": plain(text, HEADER_TEXT)}


def section(text: str, block_id: str, *, accessory: Block | None = None) -> Block:
    """A mrkdwn section block, optionally with an accessory element."""
    block: Block = {"type": "section", "block_id": block_id, "text": mrkdwn(text)}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def context(texts: list[str], block_id: str) -> Block:
    """A context block of up to 10 mrkdwn elements."""
    return {
        "type": "context",
        "block_id": block_id,
        "elements": [mrkdwn(t, SECTION_TEXT) for t in texts[:CONTEXT_ELEMENTS]],
    }


def button(
    text: str, action_id: str, *, value: str | None = None, style: str | None = None, url: str | None = None
) -> Block:
    """A button element; ``value`` carries ids only, never state."""
    element: Block = {"type": "button", "action_id": action_id, "text": plain(text, BUTTON_TEXT)}
    if value is not None:
        element["value"] = value[:BUTTON_VALUE]
    if style is not None:
        element["style"] = style
    if url is not None:
        element["url"] = url
    return element


def actions(elements: list[Block], block_id: str) -> Block:
    """An actions block of at most 25 elements."""
    return {"type": "actions", "block_id": block_id, "elements": elements[:ACTIONS_ELEMENTS]}


def utc_time(at: datetime) -> str:
    """``10:32 UTC``; naive datetimes are taken as UTC."""
    return f"{as_utc(at):%H:%M} UTC"


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC; naive datetimes are taken as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def duration(seconds: float) -> str:
    """A short human duration: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    total = int(abs(seconds))
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{total}s"


def metadata(data: dict[str, Any]) -> str:
    """Compact JSON for ``private_metadata`` (checked against the 3000-character limit by callers)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
