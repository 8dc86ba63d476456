"""JSON Schema -> HTML form fields, and submitted form data -> typed values (private).

Schema fields are posted under ``f:<name>`` so they never clash with the form's own
controls (``action``, ``comment``, ``confirm``). Conversion problems (a number that is not
a number, bad JSON) are reported here; everything else the schema says is checked by the
engine, so both share one set of rules.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from multidict import MultiMapping

from engine.inputs import schema_errors
from engine.sensitive import is_sensitive

PREFIX = "f:"
_MULTILINE_OVER = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INPUT_TYPES = {"date": "date", "date-time": "datetime-local", "email": "email", "uri": "url", "url": "url"}


@dataclass
class Option:
    """One choice of a select: the posted text, its label and whether it is selected."""

    value: str
    label: str
    selected: bool = False


@dataclass
class FormField:
    """Everything a template needs to draw one input."""

    name: str
    key: str
    label: str
    widget: str
    required: bool
    value: str = ""
    checked: bool = False
    options: list[Option] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    help: str = ""
    error: str = ""


def properties(schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The top-level properties of an object schema, in declaration order."""
    props = schema.get("properties")
    if not isinstance(props, dict):
        return {}
    return {str(k): v for k, v in props.items() if isinstance(v, dict)}


def _required(schema: Mapping[str, Any]) -> set[str]:
    req = schema.get("required")
    return {str(r) for r in req} if isinstance(req, list) else set()


def _enum_items(prop: Mapping[str, Any]) -> list[Any] | None:
    items = prop.get("items")
    if prop.get("type") == "array" and isinstance(items, dict) and isinstance(items.get("enum"), list):
        return list(items["enum"])
    return None


def widget_of(prop: Mapping[str, Any]) -> str:
    """The HTML control for a property; ``json`` is the fallback for shapes we cannot draw."""
    typ = prop.get("type")
    if isinstance(prop.get("enum"), list):
        return "select"
    if _enum_items(prop) is not None:
        return "multiselect"
    if typ == "boolean":
        return "checkbox"
    if typ in ("integer", "number"):
        return "number"
    if typ == "string" or typ is None:
        if is_sensitive(prop):
            return "password"  # never shown back, not autofilled into view
        max_length = prop.get("maxLength")
        if prop.get("format") == "multiline" or prop.get("x-multiline") is True:
            return "textarea"
        if isinstance(max_length, int) and max_length > _MULTILINE_OVER:
            return "textarea"
        return _INPUT_TYPES.get(str(prop.get("format")), "text")
    return "json"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _display(widget: str, value: Any) -> str:
    if value is None:
        return ""
    if widget == "datetime-local" and isinstance(value, str):
        return _to_local_input(value)
    if widget == "json":
        return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _to_local_input(value: str) -> str:
    # <input type=datetime-local> shows no zone; we show and read UTC and say so next to it
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M")


def _attrs(prop: Mapping[str, Any], widget: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if widget == "number":
        attrs["step"] = "1" if prop.get("type") == "integer" else "any"
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if isinstance(prop.get(key), int | float):
                attrs[attr] = str(prop[key])
    for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
        if isinstance(prop.get(key), int) and widget in ("text", "textarea", "email", "url"):
            attrs[attr] = str(prop[key])
    return attrs


def _help(prop: Mapping[str, Any], widget: str) -> str:
    parts = [str(prop["description"])] if isinstance(prop.get("description"), str) else []
    lo, hi = prop.get("minimum"), prop.get("maximum")
    if widget == "number" and (lo is not None or hi is not None):
        parts.append(
            f"between {lo} and {hi}"
            if lo is not None and hi is not None
            else f"min {lo}"
            if lo is not None
            else f"max {hi}"
        )
    if widget == "datetime-local":
        parts.append("UTC")
    if widget == "json":
        parts.append("JSON")
    if widget == "multiselect":
        parts.append("Ctrl or Cmd + click to choose several")
    return " · ".join(parts)


def _error_for(name: str, errors: Mapping[str, str]) -> str:
    if name in errors:
        return errors[name]
    nested = [msg for key, msg in errors.items() if key.startswith(f"{name}.")]
    return nested[0] if nested else ""


def build_fields(
    schema: Mapping[str, Any], values: Mapping[str, Any], errors: Mapping[str, str] | None = None
) -> list[FormField]:
    """One FormField per property, filled from ``values`` (or the schema default) and ``errors``."""
    errors = errors or {}
    required = _required(schema)
    out: list[FormField] = []
    for name, prop in properties(schema).items():
        widget = widget_of(prop)
        value = values.get(name, prop.get("default"))
        f = FormField(
            name=PREFIX + name,
            key=name,
            label=str(prop.get("title") or name.replace("_", " ").capitalize()),
            widget=widget,
            required=name in required,
            value=_display(widget, value),
            attrs=_attrs(prop, widget),
            help=_help(prop, widget),
            error=_error_for(name, errors),
        )
        if widget == "number" and f.error:
            # a browser blanks a number input holding text, which would hide what was typed
            f.widget = "text"
            f.attrs["inputmode"] = "numeric" if prop.get("type") == "integer" else "decimal"
        if widget == "checkbox":
            f.checked = value is True
        elif widget == "select":
            f.options = [Option(_text(v), _text(v), v == value) for v in prop["enum"]]
        elif widget == "multiselect":
            chosen = value if isinstance(value, list) else []
            f.options = [Option(_text(v), _text(v), v in chosen) for v in _enum_items(prop) or []]
        out.append(f)
    return out


def general_errors(schema: Mapping[str, Any], errors: Mapping[str, str]) -> list[str]:
    """Errors that belong to no drawn field (the whole object, unknown names)."""
    names = set(properties(schema))
    return [f"{key}: {msg}" if key else msg for key, msg in errors.items() if key.split(".")[0] not in names]


@dataclass
class Parsed:
    """Typed values, conversion errors, and the raw text to show again where conversion failed."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> dict[str, Any]:
        """What to put back in the form: typed values, and the raw text for fields that failed."""
        return {**self.values, **self.raw}


def parse_form(schema: Mapping[str, Any], form: MultiMapping[Any]) -> Parsed:
    """Convert posted form data to the types the schema asks for; empty optional fields are omitted."""
    parsed = Parsed()
    required = _required(schema)
    for name, prop in properties(schema).items():
        widget = widget_of(prop)
        key = PREFIX + name
        if widget == "checkbox":
            parsed.values[name] = key in form
            continue
        if widget == "multiselect":
            by_text = {_text(v): v for v in _enum_items(prop) or []}
            chosen = form.getall(key, [])
            unknown = [c for c in chosen if c not in by_text]
            if unknown:
                parsed.errors[name] = f"not one of the choices: {', '.join(unknown)}"
            parsed.values[name] = [by_text[c] for c in chosen if c in by_text]
            continue
        text = str(form.get(key, ""))
        if not text.strip():
            # an edit merges over the proposed values, so a cleared required field must be
            # refused here or the old value would silently come back
            # a sensitive field is never sent to the browser: left empty, the proposed value stays
            if name in required and not is_sensitive(prop):
                parsed.errors[name] = "this field is required"
            continue
        try:
            parsed.values[name] = _convert(prop, widget, text)
        except ValueError as exc:
            parsed.errors[name] = str(exc)
            parsed.raw[name] = text
    return parsed


def _convert(prop: Mapping[str, Any], widget: str, text: str) -> Any:
    if widget == "select":
        by_text = {_text(v): v for v in prop["enum"]}
        if text not in by_text:
            raise ValueError("not one of the choices")
        return by_text[text]
    if widget == "number":
        return _number(text.strip(), integer=prop.get("type") == "integer")
    if widget == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("not valid JSON") from None
    return _formatted(widget, text)


def _number(text: str, *, integer: bool) -> int | float:
    try:
        return int(text)
    except ValueError:
        if integer:
            raise ValueError("enter a whole number") from None
    try:
        value = float(text)
    except ValueError:
        raise ValueError("enter a number") from None
    if not math.isfinite(value):
        raise ValueError("enter a finite number")
    return value


def _formatted(widget: str, text: str) -> str:
    # the engine's schema check does not enforce formats, so the console checks the ones it draws
    value = text.strip() if widget != "textarea" else text
    if widget == "email" and not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    if widget == "url":
        parts = urlsplit(value)
        if not (parts.scheme and parts.netloc):
            raise ValueError("not a valid URL (like https://example.com)")
    if widget == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError("not a valid date (YYYY-MM-DD)") from None
    if widget == "datetime-local":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("not a valid date and time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.isoformat().replace("+00:00", "Z")
    return value


def other_errors(schema: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, str]:
    """Schema errors of the fields that did convert, so one refusal lists every problem.

    Used only when the form is refused anyway; the engine stays the judge of what is accepted.
    """
    present = {k: v for k, v in schema_errors(dict(schema), dict(values)).items() if k in values}
    return present
