"""Labelled values as Slack blocks: the proposal in full, context previews (private).

A label is product text (bold mrkdwn, escaped); a value is data and is always a ``plain_text``
object of its own, so nothing in it can look like a label, a mention or a link. Cards and the
Home tab use label/value pairs (two section fields each, five pairs to a section); modals give
each field a label block and as many plain-text blocks as its value needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from bot.blocks._kit import ELLIPSIS, FIELD_TEXT, SECTION_FIELDS, Block, clip, data, mrkdwn
from engine.shown import ShownField, escape_markup

__all__ = [
    "CARD_FIELDS",
    "CARD_TOTAL",
    "cut_note",
    "fits_card",
    "label_text",
    "pair_sections",
    "shows_in_full",
    "value_text",
    "view_blocks",
]

CARD_FIELDS = 20  # label/value pairs a card or a Home item shows in full
CARD_TOTAL = 8000  # characters of values a card or a Home item shows in full
PAIRS = SECTION_FIELDS // 2
LABEL = 300
VIEW_CHUNK = 2900  # characters of a value per plain-text block in a modal


def label_text(label: str) -> str:
    """A field label as product markup: bold, the label itself escaped."""
    return f"*{clip(escape_markup(label), LABEL)}*"


def value_text(text: str, limit: int = FIELD_TEXT) -> Block:
    """A value as data: plain text, or a product note when there is nothing to show."""
    if not text.strip():
        return mrkdwn("_(empty)_" if not text else "_(blank)_")
    return data(text, limit)


def fits_card(fields: list[ShownField]) -> bool:
    """True when every value fits a card (or a Home item) in full, so one-click Approve may be offered."""
    return (
        len(fields) <= CARD_FIELDS
        and all(len(f.text) <= FIELD_TEXT for f in fields)
        and sum(len(f.text) for f in fields) <= CARD_TOTAL
    )


def pair_sections(
    fields: list[ShownField],
    block_id: Callable[[int], str],
    *,
    heading: str | None = None,
    preview: int = FIELD_TEXT,
) -> tuple[list[Block], list[str]]:
    """Sections of label/value pairs, five to a section.

    Args:
        fields: the labelled values.
        block_id: the block id of the n-th section.
        heading: product markup shown above the first pairs.
        preview: values longer than this are cut (context previews); the proposal passes
            ``FIELD_TEXT`` and is only rendered this way when ``fits_card`` holds.

    Returns:
        The sections, and the fields whose value was cut.
    """
    blocks: list[Block] = []
    cut: list[str] = []
    for n in range(0, len(fields), PAIRS):
        items: list[Block] = []
        for f in fields[n : n + PAIRS]:
            items += [mrkdwn(label_text(f.label), FIELD_TEXT), value_text(clip(f.text, preview))]
            if len(f.text) > preview:
                cut.append(f.field)
        block: Block = {"type": "section", "block_id": block_id(n // PAIRS), "fields": items}
        if heading and not blocks:
            block["text"] = mrkdwn(heading)
        blocks.append(block)
    if heading and not blocks:
        blocks.append({"type": "section", "block_id": block_id(0), "text": mrkdwn(heading)})
    return blocks, cut


def _chunks(text: str, size: int) -> list[str]:
    """``text`` in pieces of at most ``size`` characters, broken after a space or a new line when
    one is near; joined, the pieces are ``text`` exactly."""
    pieces: list[str] = []
    start = 0
    while len(text) - start > size:
        end = start + size
        soft = max(text.rfind("\n", end - 200, end), text.rfind(" ", end - 200, end))
        end = soft + 1 if soft > start else end
        pieces.append(text[start:end])
        start = end
    pieces.append(text[start:])
    return pieces


def view_blocks(fields: list[ShownField], prefix: str, *, blocks: int, size: int) -> list[Block] | None:
    """Every field in full for a modal: a label block, then the value as plain-text blocks.

    Args:
        fields: the labelled values.
        prefix: the block id prefix (ids are ``<prefix><n>`` and ``<prefix><n>.<chunk>``).
        blocks: how many blocks the modal has room for.
        size: how many bytes of JSON the modal has room for.

    Returns:
        The blocks, or None when the values do not fit in full.
    """
    out: list[Block] = []
    for n, f in enumerate(fields):
        label: Block = {"type": "section", "block_id": f"{prefix}{n}", "text": mrkdwn(label_text(f.label))}
        if len(f.text) <= FIELD_TEXT:
            out.append({**label, "fields": [value_text(f.text)]})
            continue
        out.append(label)
        out += [
            {"type": "section", "block_id": f"{prefix}{n}.{i}", "text": data(piece, VIEW_CHUNK)}
            for i, piece in enumerate(_chunks(f.text, VIEW_CHUNK))
        ]
        if len(out) > blocks:
            return None
    if len(out) > blocks or len(json.dumps(out).encode()) > size:
        return None
    return out


def cut_note(fields: list[ShownField]) -> str | None:
    """The note under values a decided card shows cut, or None when every value is whole."""
    if fits_card(fields):
        return None
    return f"_Long values are cut here ({ELLIPSIS}); `signoff show` and the audit log have them in full._"


_ENTITY = re.compile(r"&(?:lt|gt|amp);")
_DECODED = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}


def _texts(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        if value.get("type") in {"plain_text", "mrkdwn"} and isinstance(value.get("text"), str):
            yield value["type"], value["text"]
            return
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def shows_in_full(blocks: Any, fields: list[ShownField]) -> bool:
    """True when ``blocks`` (a message or a view, as Slack sent it back with a click) show every
    one of ``fields``: its label as the product's bold label, then its whole value as plain text."""
    seq = list(_texts(blocks))

    def shown(f: ShownField) -> bool:
        label = label_text(f.label)
        for n, (kind, text) in enumerate(seq):
            if kind != "mrkdwn" or not text.endswith(label):
                continue
            value, m = "", n + 1
            while m < len(seq) and seq[m][0] == "plain_text":
                value += _ENTITY.sub(lambda e: _DECODED[e.group()], seq[m][1])
                m += 1
            if value == f.text or (not f.text.strip() and m == n + 1):
                return True
        return False

    return all(shown(f) for f in fields)
