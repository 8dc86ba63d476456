"""Read one ``view.state.values[block_id]["value"]`` entry back into a JSON value (private).

Slack sends ``null``, a missing key or ``""`` for an untouched field; all three mean "empty".
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from bot.blocks import _choices
from bot.blocks._elements import ParseError, kind

EMPTY = object()
"""Marker for a field the user left empty (omitted from the data when optional)."""


def read(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    """The JSON value for one field, or ``EMPTY``.

    Raises:
        ParseError: the value cannot be converted (e.g. a number that is not one).
    """
    k = kind(prop)
    reader = _READERS.get(k, _read_text)
    return reader(prop, state)


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def _read_text(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    value = state.get("value")
    return EMPTY if _blank(value) else str(value)


def _read_json(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    value = state.get("value")
    if _blank(value):
        return EMPTY
    try:
        return json.loads(str(value))
    except ValueError as e:
        raise ParseError("Not valid JSON") from e


def _read_number(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    value = state.get("value")
    if _blank(value):
        return EMPTY
    text = str(value).strip()
    if prop.get("type") == "integer":
        try:
            return int(text)
        except ValueError as e:
            raise ParseError("Must be a whole number") from e
    try:
        number = float(text)
    except ValueError as e:
        raise ParseError("Must be a number") from e
    if not math.isfinite(number):
        raise ParseError("Must be a number")
    # "3" stays an int so that data round-trips exactly; "3.5" becomes a float.
    return int(text) if text.lstrip("+-").isdigit() else number


def _read_option(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    option = state.get("selected_option")
    if not isinstance(option, dict) or _blank(option.get("value")):
        return EMPTY
    found, value = _choices.value_of(prop, str(option["value"]))
    if not found:
        raise ParseError("Choose one of the listed options")
    return value


def _read_options(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    selected = state.get("selected_options") or []
    out = []
    for option in selected:
        found, value = _choices.value_of(prop.get("items", {}), str(option.get("value", "")))
        if not found:
            raise ParseError("Choose from the listed options")
        out.append(value)
    return out or EMPTY


def _read_boolean(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    # An unchecked box is a real answer ("no"), never "empty".
    return bool(state.get("selected_options"))


def _read_date(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    value = state.get("selected_date")
    return EMPTY if _blank(value) else str(value)


def _read_time(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    value = state.get("selected_time")
    return EMPTY if _blank(value) else str(value)


def _read_datetime(prop: dict[str, Any], state: dict[str, Any]) -> Any:
    value = state.get("selected_date_time")
    if _blank(value):
        return EMPTY
    try:
        return datetime.fromtimestamp(int(str(value)), UTC).isoformat()
    except (TypeError, ValueError, OverflowError) as e:
        raise ParseError("Not a valid date and time") from e


def _picked(key: str) -> Any:
    def reader(prop: dict[str, Any], state: dict[str, Any]) -> Any:
        value = state.get(key)
        return EMPTY if _blank(value) else value

    return reader


_READERS = {
    "json": _read_json,
    "number_input": _read_number,
    "static_select": _read_option,
    "radio_buttons": _read_option,
    "checkboxes": _read_options,
    "multi_static_select": _read_options,
    "boolean": _read_boolean,
    "datepicker": _read_date,
    "timepicker": _read_time,
    "datetimepicker": _read_datetime,
    "users_select": _picked("selected_user"),
    "conversations_select": _picked("selected_conversation"),
    "multi_users_select": _picked("selected_users"),
    "multi_conversations_select": _picked("selected_conversations"),
}
