"""A sensitive field is never sent back to a person's form: no pre-filled value, kept when left empty."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from multidict import MultiDict

from bot.blocks.modals import edit_modal, form_schema
from bot.web import _forms
from engine.model import Checkpoint
from engine.sensitive import MASK
from engine.shown import proposal_fields

SECRET = "DE89-3704-0044-0532-0130-00"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"iban": {"type": "string", "x-signoff-sensitive": True}, "amount": {"type": "number"}},
    "required": ["iban", "amount"],
}


def _cp() -> Checkpoint:
    return Checkpoint(
        id="cp_1",
        run_id="run_1",
        node_id="pay",
        options=["approve", "reject", "edit"],
        response_schema=SCHEMA,
        proposed={"iban": SECRET, "amount": 10},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_the_proposal_shows_the_field_masked() -> None:
    assert [(f.field, f.text) for f in proposal_fields(_cp())] == [("iban", MASK), ("amount", "10")]


def test_the_slack_edit_form_does_not_prefill_it_and_does_not_require_it() -> None:
    view = edit_modal(_cp())
    assert SECRET not in json.dumps(view)
    assert "iban" not in form_schema(_cp())["required"]


def test_the_console_form_uses_a_password_input_and_keeps_an_empty_one() -> None:
    assert _forms.widget_of(SCHEMA["properties"]["iban"]) == "password"
    parsed = _forms.parse_form(
        SCHEMA, MultiDict({_forms.PREFIX + "iban": "", _forms.PREFIX + "amount": "12"})
    )
    assert parsed.errors == {}
    assert parsed.values == {"amount": 12}
