"""The "missing inputs" modal of ``/signoff run``: ask for exactly what is missing or invalid."""

from __future__ import annotations

import json
from typing import Any

from bot.blocks import forms
from bot.blocks._kit import PRIVATE_METADATA, VIEW_BLOCKS, metadata, section
from bot.blocks.modals import modal
from engine.shown import escape_markup

__all__ = ["RUN_INPUTS_SUBMIT", "fields_to_ask", "read_run_metadata", "run_inputs_modal"]

RUN_INPUTS_SUBMIT = "run.inputs_submit"


def fields_to_ask(schema: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """Schema fields that are missing (required) or invalid in ``values``, in schema order."""
    errors = forms.validate_data(schema, values)
    return [f for f in forms.schema_fields(schema) if f in errors]


def _metadata(workflow_id: str, channel_id: str | None, kept: dict[str, Any] | None) -> str:
    data: dict[str, Any] = {"workflow_id": workflow_id}
    if channel_id:
        data["channel_id"] = channel_id
    if kept is not None:
        data["values"] = kept
    return metadata(data)


def run_inputs_modal(
    workflow_id: str,
    title: str,
    schema: dict[str, Any],
    *,
    values: dict[str, Any],
    only_fields: list[str] | None,
    channel_id: str | None,
) -> dict[str, Any]:
    """A modal asking for the run inputs that are missing or invalid, pre-filled with the rest.

    Args:
        workflow_id: the workflow to start on submit.
        title: the workflow title (the modal title is cut to Slack's 24 characters).
        schema: the workflow's input schema.
        values: what the user already gave (e.g. ``key=value`` on the command line).
        only_fields: the fields to ask; ``None`` asks those that are missing or invalid.
        channel_id: where the command was typed, to post the run there.

    Returns:
        A modal with ``callback_id = "run.inputs_submit"``. Its ``private_metadata`` holds the
        workflow id, the channel and the given values that are not asked again; when those do
        not fit in 3000 characters only the ids are kept and every given field is asked again.
    """
    fields = forms.schema_fields(schema)
    asked = list(only_fields) if only_fields is not None else fields_to_ask(schema, values)
    if not asked:
        asked = list(fields)
    kept = {k: v for k, v in values.items() if k not in asked}
    private = _metadata(workflow_id, channel_id, kept)
    if len(private) > PRIVATE_METADATA:
        asked = [f for f in fields if f in asked or f in values]
        private = _metadata(workflow_id, channel_id, None)
    # Invalid values are not pre-filled: Slack may refuse a view whose initial value breaks
    # the element's own limits (e.g. a number above max_value).
    invalid = forms.validate_data(schema, values)
    prefill = {k: v for k, v in values.items() if k not in invalid}
    inputs = forms.schema_to_blocks(schema, values=prefill, only=asked)
    intro = section(f"Starting *{escape_markup(title or workflow_id)}*. Fill in the fields below.", "intro")
    return modal(
        f"Run {title or workflow_id}",
        [intro, *inputs][:VIEW_BLOCKS],
        callback_id=RUN_INPUTS_SUBMIT,
        private_metadata=private,
        submit="Run",
    )


def read_run_metadata(private_metadata: str) -> tuple[str, str | None, dict[str, Any]]:
    """``(workflow id, channel id, kept values)`` from a ``run.inputs_submit`` view.

    Pass the kept values as ``base`` to ``forms.parse_submission`` to validate them together.
    """
    try:
        data = json.loads(private_metadata)
    except (TypeError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    values = data.get("values")
    channel = data.get("channel_id")
    return (
        str(data.get("workflow_id", "")),
        channel if isinstance(channel, str) else None,
        values if isinstance(values, dict) else {},
    )
