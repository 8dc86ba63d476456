"""Sensitive values: found by schema, masked by value wherever they are copied."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.sensitive import (
    MASK,
    Redactor,
    mask_marked,
    may_mark_sensitive,
    sensitive_paths,
    stored_inputs_schema,
)
from tests.unit.engine.conftest import World

SCHEMA = {
    "type": "object",
    "properties": {
        "card": {"type": "string", "x-signoff-sensitive": True},
        "payer": {"type": "object", "properties": {"iban": {"type": "string", "writeOnly": True}}},
        "pin": {"type": "integer", "writeOnly": True},
        "note": {"type": "string"},
    },
}
DATA = {"card": "4242424242424242", "payer": {"iban": "DE89370400440532013000"}, "pin": 1234, "note": "hi"}


def test_marked_paths_at_any_depth() -> None:
    assert sensitive_paths(SCHEMA) == [("card",), ("payer", "iban"), ("pin",)]
    assert mask_marked(DATA, SCHEMA) == {"card": MASK, "payer": {"iban": MASK}, "pin": MASK, "note": "hi"}


def test_values_are_masked_wherever_they_were_copied() -> None:
    r = Redactor.collect([(DATA, SCHEMA)])
    shown = {"stdin": "charge 4242424242424242 now", "out": {"iban": "DE89370400440532013000"}, "n": 1234}
    assert r.value(shown) == {"stdin": f"charge {MASK} now", "out": {"iban": MASK}, "n": MASK}
    assert r.value("note: hi") == "note: hi"


def test_short_values_are_not_searched_for() -> None:
    r = Redactor.collect([({"pin": "12"}, {"properties": {"pin": {"writeOnly": True}}})])
    assert not r
    assert r.text("line 12") == "line 12"


async def test_a_run_redactor_covers_inputs_and_answers(make_world: Callable[..., World]) -> None:
    text = """\
id: pay
inputs: {type: object, properties: {card: {type: string, x-signoff-sensitive: true}}}
nodes:
  - id: ask
    type: human
    kind: input
    prompt: "Code?"
    context: {card: "{{ inputs.card }}"}
    response_schema: {type: object, properties: {otp: {type: string, writeOnly: true}}}
"""
    w = make_world(text)
    run = await w.engine.start("pay", {"card": "4111111111111111"}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id)
    from engine.commands import Decide

    await w.engine.decide(Decide(checkpoint_id=cp.id, action="answer", actor="alice", data={"otp": "987654"}))
    r = await w.engine.redactor(await w.store.get_run(run.id))
    assert r.value(cp.context) == {"card": MASK}
    steps = await w.store.list_steps(run.id)
    assert "987654" not in str(r.value([s.model_dump(mode="json") for s in steps]))


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ("inputs:\n  properties:\n    card: {type: string, x-signoff-sensitive: true}\n", "card"),
        ('inputs:\n  properties:\n    card: {"x-signoff-sensitive": true}\n', "card"),
        ("inputs:\n  properties:\n    otp: {type: string, writeOnly: true}\n", "otp"),
        ('{"inputs": {"properties": {"card": {"x-signoff-\\u0073ensitive": true}}}}', "card"),
        ('inputs:\n  properties:\n    pin: {"writeOnl\\x79": true}\n', "pin"),
    ],
)
def test_a_source_that_marks_a_value_sensitive_is_parsed(source: str, field: str) -> None:
    assert sensitive_paths(stored_inputs_schema(source)) == [(field,)]
    assert may_mark_sensitive(source)


def test_a_source_without_a_marker_needs_no_parsing() -> None:
    source = "id: refund\ninputs:\n  properties:\n    customer: {type: string}\n"
    assert not may_mark_sensitive(source)
    assert sensitive_paths(stored_inputs_schema(source)) == []
