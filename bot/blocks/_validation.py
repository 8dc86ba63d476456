"""Server-side JSON Schema validation with messages a person can act on (private)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

GENERAL = ""
"""Key for errors that belong to no single field (the convention of ``InvalidInput.errors``)."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Our own format checks: jsonschema's built-ins for date-time/time/uri silently pass when
# optional packages are missing, and the result must not depend on what is installed.
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("email")
def _is_email(value: object) -> bool:
    return not isinstance(value, str) or bool(_EMAIL.match(value))


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE.match(value) and date.fromisoformat(value))


@_FORMATS.checks("time", raises=ValueError)
def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return bool(_TIME.match(value)) and time.fromisoformat(value.replace("Z", "+00:00")) is not None


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return "T" in value.upper() and datetime.fromisoformat(value.replace("Z", "+00:00")) is not None


@_FORMATS.checks("uri")
@_FORMATS.checks("url")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and (parts.netloc or parts.scheme in ("mailto", "urn")))


_FORMAT_TEXT = {
    "email": "Not a valid email address",
    "date": "Not a valid date (YYYY-MM-DD)",
    "time": "Not a valid time (HH:MM)",
    "date-time": "Not a valid date and time",
    "uri": "Not a valid URL",
    "url": "Not a valid URL",
}
_TYPE_TEXT = {
    "integer": "Must be a whole number",
    "number": "Must be a number",
    "string": "Must be text",
    "boolean": "Must be yes or no",
    "array": "Must be a list",
    "object": "Must be an object",
}


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


_MESSAGES: dict[str, Callable[[ValidationError], str]] = {
    "required": lambda e: "Required",
    "minimum": lambda e: f"Must be at least {e.validator_value}",
    "maximum": lambda e: f"Must be at most {e.validator_value}",
    "exclusiveMinimum": lambda e: f"Must be more than {e.validator_value}",
    "exclusiveMaximum": lambda e: f"Must be less than {e.validator_value}",
    "multipleOf": lambda e: f"Must be a multiple of {e.validator_value}",
    "minLength": lambda e: (
        "Required"
        if e.validator_value == 1
        else f"Must be at least {_plural(e.validator_value, 'character')}"
    ),
    "maxLength": lambda e: f"Must be at most {_plural(e.validator_value, 'character')}",
    "minItems": lambda e: f"Choose at least {e.validator_value}",
    "maxItems": lambda e: f"Choose at most {e.validator_value}",
    "uniqueItems": lambda e: "Choose each option only once",
    "enum": lambda e: "Choose one of the listed options",
    "const": lambda e: f"Must be {e.validator_value!r}",
    "format": lambda e: _FORMAT_TEXT.get(str(e.validator_value), f"Not a valid {e.validator_value}"),
    "type": lambda e: _TYPE_TEXT.get(str(e.validator_value), "Has the wrong type"),
    "additionalProperties": lambda e: "Unexpected fields: " + ", ".join(sorted(_extra(e))),
}


def _extra(error: ValidationError) -> list[str]:
    instance, schema = error.instance, error.schema
    props = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    return [str(k) for k in instance if k not in props] if isinstance(instance, dict) else []


def _message(error: ValidationError) -> str:
    custom = error.schema.get("x-error") if isinstance(error.schema, Mapping) else None
    if isinstance(custom, str) and custom:
        return custom
    if error.validator == "pattern":
        return "Does not match the expected format"
    render = _MESSAGES.get(str(error.validator))
    return render(error) if render else error.message[:200]


def _located(error: ValidationError) -> list[tuple[str, str]]:
    """``(top-level field, message)`` for one error; missing required fields name themselves."""
    if error.validator == "required" and not error.path and isinstance(error.instance, dict):
        names = error.validator_value if isinstance(error.validator_value, list) else []
        return [(str(name), "Required") for name in names if name not in error.instance]
    field = str(error.absolute_path[0]) if error.absolute_path else GENERAL
    return [(field, _message(error))]


def validate(schema: dict[str, Any], data: Any) -> dict[str, str]:
    """Validate ``data`` against ``schema`` (Draft 2020-12): field -> first message."""
    validator = Draft202012Validator(schema, format_checker=_FORMATS)
    errors: dict[str, str] = {}
    for error in sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.path)), e.validator)):
        for field, message in _located(error):
            errors.setdefault(field, message)
    return errors
