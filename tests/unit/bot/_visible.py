"""What a person sees of a Slack message or view: its text objects, in order, and the checks
built on them (is a field shown in full, labelled, as data that cannot imitate the product)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.model import Checkpoint
from engine.shown import display_text, escape_markup, field_label

Blocks = list[dict[str, Any]]


def text_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every ``plain_text`` and ``mrkdwn`` object inside ``value``, in document order."""
    if isinstance(value, dict):
        if value.get("type") in {"plain_text", "mrkdwn"} and isinstance(value.get("text"), str):
            yield value
            return
        for key, item in value.items():
            if key not in {"private_metadata", "value", "state"}:
                yield from text_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from text_objects(item)


def visible(blocks: Any) -> list[tuple[str, str]]:
    """``(type, text)`` of every text object a person sees."""
    return [(t["type"], t["text"]) for t in text_objects(blocks)]


def shows_field(blocks: Any, label: str, value: str) -> bool:
    """True when ``label`` appears as the product's bold label, followed by ``value`` in full as
    plain text with emoji codes off (in one piece, or split over consecutive plain-text blocks)."""
    seq = list(text_objects(blocks))
    wanted = f"*{escape_markup(label)}*"
    for n, obj in enumerate(seq):
        if obj["type"] != "mrkdwn" or not obj["text"].endswith(wanted):
            continue
        got, m = "", n + 1
        while m < len(seq) and seq[m]["type"] == "plain_text" and seq[m].get("emoji") is False:
            got += seq[m]["text"]
            m += 1
        if got == value:
            return True
    return False


def missing_fields(blocks: Any, cp: Checkpoint, values: dict[str, Any] | None = None) -> list[str]:
    """The fields of ``values`` (default: every key of ``cp.proposed``, all that Approve passes
    on) that the blocks do not show in full under their schema label."""
    shown = cp.proposed if values is None else values
    return [
        k
        for k, v in shown.items()
        if not shows_field(blocks, field_label(k, cp.response_schema), display_text(v))
    ]


def mrkdwn_texts(blocks: Any) -> list[str]:
    """The mrkdwn texts only: where Slack would format, mention or link."""
    return [text for kind, text in visible(blocks) if kind == "mrkdwn"]
