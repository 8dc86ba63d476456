"""JSON Schema -> Block Kit ``input`` blocks, and a submitted ``view.state.values`` back to data.

One property becomes one input block with ``block_id = f"{prefix}:{field}"`` and
``action_id = "value"``. The ids are stable so Slack keeps what the user typed across
``views.update``. The mapping and the state shapes are in docs/slack-platform.md §4.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bot.blocks import _elements, _state, _validation
from bot.blocks._kit import ID_TEXT, LABEL_TEXT, Block, clip, plain
from engine.shown import humanize

__all__ = [
    "GENERAL_ERROR_KEY",
    "block_id_for",
    "parse_submission",
    "schema_fields",
    "schema_to_blocks",
    "validate_data",
]

GENERAL_ERROR_KEY = _validation.GENERAL
"""Key of errors that belong to no input of the form; show them outside the inputs."""


def schema_fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The top-level properties of an object schema, in declaration order."""
    props = schema.get("properties")
    if not isinstance(props, dict):
        return {}
    return {str(name): prop for name, prop in props.items() if isinstance(prop, dict)}


def block_id_for(field: str, prefix: str = "f") -> str:
    """The input block id of ``field``: ``prefix:field`` (just ``field`` with an empty prefix).

    Ids longer than Slack's 255 characters are replaced by a stable hash of the field name.
    """
    block_id = f"{prefix}:{field}" if prefix else field
    if len(block_id) <= ID_TEXT:
        return block_id
    digest = hashlib.sha256(field.encode()).hexdigest()[:24]
    return f"{prefix}:#{digest}" if prefix else f"#{digest}"


def _required(schema: dict[str, Any]) -> set[str]:
    required = schema.get("required")
    return {str(r) for r in required} if isinstance(required, list) else set()


def _optional(prop: dict[str, Any], required: bool) -> bool:
    if _elements.kind(prop) == "boolean":
        # An unchecked box cannot be submitted when the block is required, so a boolean is
        # optional unless the only acceptable answer is "checked" (an acknowledgement).
        return not (prop.get("const") is True or prop.get("enum") == [True])
    return not required


def _input_block(
    field: str, prop: dict[str, Any], required: bool, initial: tuple[bool, Any], prefix: str
) -> Block:
    has_initial, value = initial
    block: Block = {
        "type": "input",
        "block_id": block_id_for(field, prefix),
        "label": plain(str(prop.get("title") or humanize(field)), LABEL_TEXT),
        "optional": _optional(prop, required),
        "element": _elements.element(prop, value, has_initial),
    }
    description = prop.get("description")
    if isinstance(description, str) and description.strip():
        block["hint"] = plain(description, LABEL_TEXT)
    return block


def schema_to_blocks(
    schema: dict[str, Any],
    *,
    values: dict[str, Any] | None = None,
    prefix: str = "f",
    only: list[str] | None = None,
) -> list[Block]:
    """Input blocks for every top-level property of an object schema.

    Args:
        schema: a JSON Schema of ``type: object`` with ``properties``.
        values: current values; they win over each property's ``default``.
        prefix: block id prefix, so two forms in one view cannot collide.
        only: ask only these fields (in schema order); ``None`` asks all of them.

    Returns:
        One ``input`` block per field. Slack allows 100 blocks per view; callers that add
        their own blocks must leave room.
    """
    given = values or {}
    required = _required(schema)
    blocks = []
    for field, prop in schema_fields(schema).items():
        if only is not None and field not in only:
            continue
        if field in given:
            initial: tuple[bool, Any] = (True, given[field])
        else:
            initial = ("default" in prop, prop.get("default"))
        blocks.append(_input_block(field, prop, field in required, initial, prefix))
    return blocks


def validate_data(schema: dict[str, Any], data: Any) -> dict[str, str]:
    """Validate ``data`` against ``schema`` (Draft 2020-12) with human messages.

    Returns:
        Top-level field -> first message (e.g. ``"Must be at least 0"``, ``"Required"``);
        errors about the object as a whole are under ``GENERAL_ERROR_KEY``. Empty when valid.
    """
    return _validation.validate(schema, data)


def parse_submission(
    schema: dict[str, Any],
    state_values: dict[str, Any],
    *,
    prefix: str = "f",
    base: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Convert a submitted ``view.state.values`` to data and validate it.

    Args:
        schema: the schema the form was built from.
        state_values: ``view["state"]["values"]`` of the ``view_submission`` payload.
        prefix: the prefix the form was built with.
        base: values of fields that were not in the form (e.g. given on the command line);
            they are validated together with the submitted ones.

    Returns:
        ``(data, errors)``: ``errors`` maps input block ids to messages, ready for
        ``ack(response_action="errors", errors=...)``; errors about fields that are not in the
        form (or about the whole object) are under ``GENERAL_ERROR_KEY``, which the caller must
        show some other way.
    """
    data: dict[str, Any] = dict(base or {})
    errors: dict[str, str] = {}
    in_form: dict[str, str] = {}
    for field, prop in schema_fields(schema).items():
        block_id = block_id_for(field, prefix)
        if block_id not in state_values:
            continue
        in_form[field] = block_id
        data.pop(field, None)
        entry = state_values[block_id]
        state = entry.get("value") if isinstance(entry, dict) else None
        try:
            value = _state.read(prop, state if isinstance(state, dict) else {})
        except _elements.ParseError as e:
            errors[block_id] = str(e)
            continue
        if value is not _state.EMPTY:
            data[field] = value
    for field, message in validate_data(schema, data).items():
        key = in_form.get(field, GENERAL_ERROR_KEY)
        if key == GENERAL_ERROR_KEY and field != GENERAL_ERROR_KEY:
            message = f"{humanize(field)}: {message}"
        if key in errors and key == GENERAL_ERROR_KEY:
            errors[key] = clip(f"{errors[key]}; {message}", LABEL_TEXT)
        else:
            errors.setdefault(key, message)
    return data, errors
