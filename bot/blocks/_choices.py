"""Enum choices of a JSON Schema property as Block Kit options, and back (private)."""

from __future__ import annotations

from typing import Any

from bot.blocks._kit import OPTION_TEXT, OPTION_VALUE, OPTIONS, Block, plain
from engine.shown import display_text as display_value

# Separates the index from nothing: an index value is "#3". A real enum value of "#3" is
# fine too, because a schema uses either all real values or all indexes, never a mix.
_INDEX = "#"


def choices(prop: dict[str, Any]) -> list[tuple[Any, str]]:
    """``(value, label)`` pairs from ``enum`` (+ ``x-enum-labels``) or ``oneOf: [{const, title}]``."""
    if isinstance(prop.get("enum"), list):
        labels = prop.get("x-enum-labels")
        values = list(prop["enum"])
        if isinstance(labels, list) and len(labels) == len(values):
            return [(v, str(lbl)) for v, lbl in zip(values, labels, strict=True)]
        return [(v, display_value(v)) for v in values]
    one_of = prop.get("oneOf") or prop.get("anyOf")
    if isinstance(one_of, list) and one_of and all(isinstance(o, dict) and "const" in o for o in one_of):
        return [(o["const"], str(o.get("title", display_value(o["const"])))) for o in one_of]
    return []


def has_choices(prop: dict[str, Any]) -> bool:
    """True when the property is a closed list of values."""
    return bool(choices(prop))


def _uses_index(values: list[Any]) -> bool:
    # Slack option values must be short strings; anything else (long, non-string, duplicate
    # after str()) is sent as its position in the list and mapped back on submit.
    strings = [v for v in values if isinstance(v, str)]
    return (
        len(strings) != len(values)
        or any(len(v) > OPTION_VALUE or not v for v in strings)
        or len(set(strings)) != len(strings)
    )


def option_values(prop: dict[str, Any]) -> list[str]:
    """The ``value`` each option is sent with, in enum order."""
    values = [v for v, _ in choices(prop)]
    if _uses_index(values):
        return [f"{_INDEX}{i}" for i in range(len(values))]
    return [str(v) for v in values]


def options(prop: dict[str, Any]) -> list[Block]:
    """Option objects for every choice (text and value clipped to Slack's 75 characters)."""
    return [
        {"text": plain(label, OPTION_TEXT), "value": value}
        for (_, label), value in zip(choices(prop), option_values(prop), strict=True)
    ]


def option_for(prop: dict[str, Any], value: Any) -> Block | None:
    """The option object that stands for ``value``, or None when it is not a choice."""
    for (choice, _), option in zip(choices(prop), options(prop), strict=True):
        if choice == value and type(choice) is type(value):
            return option
    return None


def value_of(prop: dict[str, Any], option_value: str) -> tuple[bool, Any]:
    """``(found, enum value)`` for a submitted option value."""
    for (choice, _), sent in zip(choices(prop), option_values(prop), strict=True):
        if sent == option_value:
            return True, choice
    return False, None


def grouped(opts: list[Block]) -> dict[str, Any]:
    """``options`` when there are at most 100, else ``option_groups`` of 100 (Slack's two caps)."""
    if len(opts) <= OPTIONS:
        return {"options": opts}
    groups = [opts[i : i + OPTIONS] for i in range(0, min(len(opts), OPTIONS * OPTIONS), OPTIONS)]
    return {
        "option_groups": [
            {"label": plain(f"{n * OPTIONS + 1}-{n * OPTIONS + len(g)}", OPTION_TEXT), "options": g}
            for n, g in enumerate(groups)
        ]
    }
