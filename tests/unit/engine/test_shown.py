"""The canonical document a person is shown, and data made inert inside Slack markup."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.model import Checkpoint
from engine.shown import escape_markup, shown_document, shown_hash

SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "number", "title": "Amount (USD)"}, "account": {"type": "string"}},
}


def _cp(**fields: object) -> Checkpoint:
    base: dict[str, object] = {
        "id": "cp_1",
        "run_id": "run_1",
        "node_id": "pay",
        "title": "Pay",
        "prompt": "Pay it?",
        "context": {"note": "hello", "customer": "ACME"},
        "response_schema": SCHEMA,
        "proposed": {"account": "DE00-ATTACKER-9999", "amount": 120, "extra": {"a": 1}},
        "options": ["approve", "reject"],
        "highlight": ["customer"],
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return Checkpoint.model_validate({**base, **fields})


def test_every_proposed_field_is_in_the_document_with_its_schema_label() -> None:
    doc = shown_document(_cp())
    assert [(f.field, f.label, f.text) for f in doc.proposal] == [
        ("amount", "Amount (USD)", "120"),
        ("account", "Account", "DE00-ATTACKER-9999"),
        ("extra", "Extra", '{"a": 1}'),
    ]
    assert [f.field for f in doc.context] == ["customer", "note"]


def test_the_hash_changes_with_any_executed_value() -> None:
    assert shown_hash(_cp()) != shown_hash(_cp(proposed={"account": "DE89-REAL", "amount": 120}))
    assert shown_hash(_cp()) == shown_hash(_cp())


def test_markup_in_data_is_inert() -> None:
    forged = "ok\n*Account*\nDE89 <!channel> <https://evil|https://bank> `x` _i_ ~s~ &amp;"
    out = escape_markup(forged)
    for control in ("\n", "*", "<", ">", "`", "_", "~", "|"):
        assert control not in out, control
    assert "&amp;amp;" in out  # an entity in data stays literal text
