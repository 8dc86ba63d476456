"""Turning ``key=value`` text (CLI flags, slash commands) into typed inputs by the schema."""

from __future__ import annotations

import json
import shlex
from typing import Any

from jsonschema import Draft202012Validator

from engine.errors import InvalidInput

__all__ = ["coerce_inputs", "parse_pairs", "schema_errors"]

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def parse_pairs(text: str | list[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``a=1 b="two words"`` into pairs; returns (pairs, words that are not pairs).

    Raises:
        InvalidInput: unbalanced quotes.
    """
    if isinstance(text, str):
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise InvalidInput(f"could not read the arguments: {exc} (check your quotes)") from exc
    else:
        words = list(text)
    pairs: dict[str, str] = {}
    rest: list[str] = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key.strip():
            pairs[key.strip()] = value
        else:
            rest.append(word)
    return pairs, rest


def coerce_inputs(schema: dict[str, Any], raw: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Convert text values to the types the schema asks for; returns (values, field errors)."""
    properties: dict[str, Any] = schema.get("properties", {})
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, text in raw.items():
        prop = properties.get(key)
        if prop is None:
            known = ", ".join(sorted(properties)) or "none"
            errors[key] = f"unknown input (this workflow takes: {known})"
            continue
        try:
            values[key] = _coerce(prop, text)
        except ValueError as exc:
            errors[key] = str(exc)
    return values, errors


def _coerce(prop: dict[str, Any], text: str) -> Any:
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ValueError(f"{text!r} is not true or false")
    if kind in {"array", "object"}:
        try:
            parsed = json.loads(text)
        except ValueError:
            if kind == "array":
                return [part.strip() for part in text.split(",") if part.strip()]
            raise ValueError(f"{text!r} is not a JSON object") from None
        return parsed
    return text


def schema_errors(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, str]:
    """Field -> message for everything wrong with ``data`` (empty when valid)."""
    if not schema:
        return {}
    errors: dict[str, str] = {}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for err in validator.iter_errors(data):
        if err.validator == "required" and isinstance(err.validator_value, list):
            for name in err.validator_value:
                if name not in (err.instance or {}):
                    errors.setdefault(str(name), "this field is required")
            continue
        path = ".".join(str(p) for p in err.absolute_path) or ""
        errors.setdefault(path, _human(err.validator, err.validator_value, err.message))
    return errors


_FORMATS = {
    "email": "an email address",
    "uri": "a URL",
    "date": "a date (YYYY-MM-DD)",
    "date-time": "a date and time (ISO 8601)",
    "time": "a time (HH:MM:SS)",
}


def _human(validator: object, value: object, fallback: str) -> str:
    messages = {
        "minLength": f"must be at least {value} characters",
        "maxLength": f"must be at most {value} characters",
        "minimum": f"must be at least {value}",
        "maximum": f"must be at most {value}",
        "exclusiveMinimum": f"must be more than {value}",
        "exclusiveMaximum": f"must be less than {value}",
        "format": f"must be {_FORMATS.get(str(value), f'a valid {value}')}",
        "enum": f"must be one of: {', '.join(map(str, value))}" if isinstance(value, list) else fallback,
        "type": f"must be {'a ' + str(value) if isinstance(value, str) else 'of type ' + str(value)}",
    }
    return messages.get(str(validator), fallback)
