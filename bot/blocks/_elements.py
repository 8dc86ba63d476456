"""One JSON Schema property -> one Block Kit input element, and its state value back (private).

The mapping follows docs/slack-platform.md §4.2; the state shapes follow §4.1.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time
from typing import Any

from bot.blocks import _choices
from bot.blocks._kit import PLACEHOLDER_TEXT, SMALL_OPTIONS, Block, plain

_TEXT_MAX = 3000
_MULTILINE_OVER = 200
_FORMAT_ELEMENT = {
    "date": "datepicker",
    "time": "timepicker",
    "date-time": "datetimepicker",
    "email": "email_text_input",
    "uri": "url_text_input",
    "url": "url_text_input",
}
_SLACK_ELEMENT = {
    "user": "users_select",
    "users": "multi_users_select",
    "channel": "conversations_select",
    "channels": "multi_conversations_select",
}
# Elements that accept a placeholder (checkboxes, radio buttons and datetimepicker do not).
_PLACEHOLDER = {
    "plain_text_input",
    "number_input",
    "email_text_input",
    "url_text_input",
    "static_select",
    "multi_static_select",
    "datepicker",
    "timepicker",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
}


class ParseError(ValueError):
    """A submitted value that cannot be converted; the message is shown to the user."""


def kind(prop: dict[str, Any]) -> str:
    """The Block Kit element type for a property, or ``json`` for the free-text fallback."""
    typ = prop.get("type")
    slack = prop.get("x-slack")
    if isinstance(slack, str) and slack in _SLACK_ELEMENT:
        return _SLACK_ELEMENT[slack]
    if typ == "array":
        raw = prop.get("items")
        items: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if _choices.has_choices(items):
            return "checkboxes" if len(_choices.choices(items)) <= SMALL_OPTIONS else "multi_static_select"
        return "json"
    if _choices.has_choices(prop):
        return "radio_buttons" if len(_choices.choices(prop)) <= SMALL_OPTIONS else "static_select"
    if typ == "boolean":
        return "boolean"
    if typ in ("integer", "number"):
        return "number_input"
    if typ == "string" or (typ is None and "format" in prop):
        return _FORMAT_ELEMENT.get(str(prop.get("format", "")), "plain_text_input")
    return "json"


def is_multiline(prop: dict[str, Any]) -> bool:
    """Long or explicitly multi-line strings get a text area."""
    max_length = prop.get("maxLength")
    return (
        prop.get("format") == "multiline"
        or prop.get("x-multiline") is True
        or (isinstance(max_length, int) and max_length > _MULTILINE_OVER)
    )


def element(prop: dict[str, Any], initial: Any, has_initial: bool) -> Block:
    """Build the element for ``prop`` (action_id ``value``), pre-filled when ``has_initial``."""
    k = kind(prop)
    el: Block = {"type": "checkboxes" if k == "boolean" else k, "action_id": "value"}
    if k == "json":
        el["type"] = "plain_text_input"
    _BUILDERS.get(k, _nothing)(el, prop)
    if has_initial and initial is not None:
        _INITIAL.get(k, _initial_text)(el, prop, initial)
    placeholder = prop.get("x-placeholder")
    if isinstance(placeholder, str) and placeholder and el["type"] in _PLACEHOLDER:
        el["placeholder"] = plain(placeholder, PLACEHOLDER_TEXT)
    return el


def _text(el: Block, prop: dict[str, Any]) -> None:
    if kind(prop) == "json":
        el["multiline"] = True
        return
    if is_multiline(prop):
        el["multiline"] = True
    if isinstance(prop.get("minLength"), int):
        el["min_length"] = max(0, min(prop["minLength"], _TEXT_MAX))
    if isinstance(prop.get("maxLength"), int):
        el["max_length"] = max(1, min(prop["maxLength"], _TEXT_MAX))


def _number(el: Block, prop: dict[str, Any]) -> None:
    el["is_decimal_allowed"] = prop.get("type") != "integer"
    for key, target in (("minimum", "min_value"), ("maximum", "max_value")):
        if _is_number(prop.get(key)):
            el[target] = number_text(prop[key])


def _select(el: Block, prop: dict[str, Any]) -> None:
    el.update(_choices.grouped(_choices.options(prop)))


def _small_select(el: Block, prop: dict[str, Any]) -> None:
    el["options"] = _choices.options(prop)


def _multi(el: Block, prop: dict[str, Any]) -> None:
    items = prop.get("items", {})
    if el["type"] == "checkboxes":
        el["options"] = _choices.options(items)
    else:
        el.update(_choices.grouped(_choices.options(items)))
    _max_items(el, prop)


def _max_items(el: Block, prop: dict[str, Any]) -> None:
    if isinstance(prop.get("maxItems"), int) and prop["maxItems"] >= 1 and el["type"] != "checkboxes":
        el["max_selected_items"] = prop["maxItems"]


def _boolean(el: Block, prop: dict[str, Any]) -> None:
    label = prop.get("x-checkbox-label") or prop.get("title") or "Yes"
    el["options"] = [{"text": plain(str(label), 75), "value": "true"}]


_BUILDERS = {
    "number_input": _number,
    "static_select": _select,
    "radio_buttons": _small_select,
    "checkboxes": _multi,
    "multi_static_select": _multi,
    "boolean": _boolean,
    "multi_users_select": _max_items,
    "multi_conversations_select": _max_items,
    "plain_text_input": _text,
    "json": _text,
}


def _nothing(el: Block, prop: dict[str, Any]) -> None:
    """Pickers and Slack selects need no settings beyond their type."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number_text(value: int | float) -> str:
    """Numbers as number_input wants them: strings, ``3`` not ``3.0`` for whole numbers."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _initial_text(el: Block, prop: dict[str, Any], value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    # Slack rejects a view whose initial value is longer than the field allows.
    el["initial_value"] = text[: el.get("max_length", _TEXT_MAX)]


def _initial_number(el: Block, prop: dict[str, Any], value: Any) -> None:
    if _is_number(value):
        el["initial_value"] = number_text(value)


def _initial_option(el: Block, prop: dict[str, Any], value: Any) -> None:
    option = _choices.option_for(prop, value)
    if option is not None:
        el["initial_option"] = option


def _initial_options(el: Block, prop: dict[str, Any], value: Any) -> None:
    if isinstance(value, list):
        found = [_choices.option_for(prop.get("items", {}), v) for v in value]
        if picked := [o for o in found if o is not None]:
            el["initial_options"] = picked


def _initial_boolean(el: Block, prop: dict[str, Any], value: Any) -> None:
    if value is True:
        el["initial_options"] = list(el["options"])


def _initial_date(el: Block, prop: dict[str, Any], value: Any) -> None:
    try:
        el["initial_date"] = date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        return


def _initial_time(el: Block, prop: dict[str, Any], value: Any) -> None:
    try:
        # Slack's timepicker has minute precision, so seconds are dropped.
        el["initial_time"] = time.fromisoformat(str(value)).strftime("%H:%M")
    except ValueError:
        return


def _initial_datetime(el: Block, prop: dict[str, Any], value: Any) -> None:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return
    el["initial_date_time"] = int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


def _initial_user(el: Block, prop: dict[str, Any], value: Any) -> None:
    key = {"users_select": "initial_user", "conversations_select": "initial_conversation"}[el["type"]]
    if isinstance(value, str) and value:
        el[key] = value


def _initial_users(el: Block, prop: dict[str, Any], value: Any) -> None:
    key = {"multi_users_select": "initial_users", "multi_conversations_select": "initial_conversations"}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        el[key[el["type"]]] = list(value)


_INITIAL = {
    "number_input": _initial_number,
    "static_select": _initial_option,
    "radio_buttons": _initial_option,
    "checkboxes": _initial_options,
    "multi_static_select": _initial_options,
    "boolean": _initial_boolean,
    "datepicker": _initial_date,
    "timepicker": _initial_time,
    "datetimepicker": _initial_datetime,
    "users_select": _initial_user,
    "conversations_select": _initial_user,
    "multi_users_select": _initial_users,
    "multi_conversations_select": _initial_users,
}
