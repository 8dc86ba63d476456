"""JSON Schema helpers shared by the LLM adapter and the skill registry."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

__all__ = ["field_errors", "schema_problem"]


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a usable object schema, or None when it is."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        return f"is not a valid JSON Schema: {e.message}"
    if schema.get("type") != "object":
        return "must have type: object"
    return None


def field_errors(schema: dict[str, Any], instance: Any) -> dict[str, str]:
    """Validate ``instance``; map each failing field (dotted path, "" for the root) to a message."""
    errors: dict[str, str] = {}
    for error in sorted(Draft202012Validator(schema).iter_errors(instance), key=lambda e: list(e.path)):
        for field, message in _explain(error):
            errors.setdefault(field, message)
    return errors


def _explain(error: ValidationError) -> list[tuple[str, str]]:
    base = ".".join(str(p) for p in error.absolute_path)
    # "required" is reported on the parent object; naming the missing field is what helps a human.
    if error.validator == "required" and isinstance(error.instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [str(r) for r in required if r not in error.instance]
        return [(_join(base, name), "is required") for name in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
        extra = [str(k) for k in error.instance if k not in allowed]
        if extra:
            return [(_join(base, name), "is not allowed") for name in extra]
    return [(base, error.message)]


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name
