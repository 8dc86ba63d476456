"""JSON Schema <-> Block Kit inputs: every type builds, round-trips through state.values, validates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.blocks.forms import (
    GENERAL_ERROR_KEY,
    block_id_for,
    parse_submission,
    schema_to_blocks,
    validate_data,
)
from tests.conftest import SLACK_FIXTURES

FIXTURES = SLACK_FIXTURES
_PLAIN = {"type": "plain_text", "emoji": True}


def _opt(value: str, text: str | None = None) -> dict[str, Any]:
    return {"text": {**_PLAIN, "text": text or value}, "value": value}


def slack_state(block: dict[str, Any], answer: Any) -> dict[str, Any]:
    """What Slack puts in state.values for ``block`` when the user picks ``answer`` (its raw form)."""
    el = block["element"]
    typ = el["type"]
    state: dict[str, Any] = {"type": typ}
    if typ in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        state["value"] = answer
    elif typ in ("static_select", "radio_buttons"):
        state["selected_option"] = _opt(answer) if answer is not None else None
    elif typ in ("checkboxes", "multi_static_select"):
        state["selected_options"] = [_opt(a) for a in answer]
    else:
        key = {
            "datepicker": "selected_date",
            "timepicker": "selected_time",
            "datetimepicker": "selected_date_time",
            "users_select": "selected_user",
            "conversations_select": "selected_conversation",
            "multi_users_select": "selected_users",
        }[typ]
        state[key] = answer
    return {block["block_id"]: {"value": state}}


def validate_blocks(blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
    assert len(blocks) <= 100


# (schema property, value given to pre-fill, expected element type, raw Slack answer, parsed value)
CASES: list[tuple[str, dict[str, Any], Any, str, Any, Any]] = [
    ("text", {"type": "string", "maxLength": 80}, "hello", "plain_text_input", "hi there", "hi there"),
    ("notes", {"type": "string", "format": "multiline"}, "a\nb", "plain_text_input", "x\ny", "x\ny"),
    ("long", {"type": "string", "maxLength": 5000}, "t", "plain_text_input", "long text", "long text"),
    ("env", {"type": "string", "enum": ["dev", "prod"]}, "prod", "radio_buttons", "dev", "dev"),
    ("count", {"type": "integer", "minimum": 0, "maximum": 9}, 3, "number_input", "7", 7),
    ("ratio", {"type": "number", "minimum": 0.5, "maximum": 2}, 1.5, "number_input", "0.75", 0.75),
    ("ok", {"type": "boolean"}, True, "checkboxes", ["true"], True),
    ("day", {"type": "string", "format": "date"}, "2026-08-14", "datepicker", "2026-09-01", "2026-09-01"),
    ("at", {"type": "string", "format": "time"}, "09:30:00", "timepicker", "22:25", "22:25"),
    (
        "when",
        {"type": "string", "format": "date-time"},
        "2021-08-10T22:17:00+00:00",
        "datetimepicker",
        1628633820,
        "2021-08-10T22:17:00+00:00",
    ),
    ("mail", {"type": "string", "format": "email"}, "a@b.co", "email_text_input", "c@d.io", "c@d.io"),
    (
        "link",
        {"type": "string", "format": "uri"},
        "https://a.io",
        "url_text_input",
        "https://b.io",
        "https://b.io",
    ),
    (
        "tags",
        {"type": "array", "items": {"enum": ["a", "b", "c"]}},
        ["b"],
        "checkboxes",
        ["a", "c"],
        ["a", "c"],
    ),
    ("owner", {"type": "string", "x-slack": "user"}, "U1", "users_select", "U2", "U2"),
    ("room", {"type": "string", "x-slack": "channel"}, "C1", "conversations_select", "C2", "C2"),
    (
        "team",
        {"type": "array", "items": {"type": "string"}, "x-slack": "users"},
        ["U1"],
        "multi_users_select",
        ["U3"],
        ["U3"],
    ),
    ("extra", {"type": "object"}, {"k": 1}, "plain_text_input", '{"k": 2}', {"k": 2}),
]


@pytest.mark.parametrize(
    ("field", "prop", "given", "element", "raw", "parsed"), CASES, ids=[c[0] for c in CASES]
)
def test_every_type_round_trips(
    field: str, prop: dict[str, Any], given: Any, element: str, raw: Any, parsed: Any
) -> None:
    schema = {"type": "object", "required": [field], "properties": {field: prop}}
    [block] = schema_to_blocks(schema, values={field: given})
    validate_blocks([block])
    assert block["block_id"] == f"f:{field}"
    assert block["element"]["type"] == element
    assert block["element"]["action_id"] == "value"
    initial = {k: v for k, v in block["element"].items() if k.startswith("initial_")}
    assert initial, "the given value is pre-filled"
    data, errors = parse_submission(schema, slack_state(block, raw))
    assert errors == {}
    assert data == {field: parsed}


def test_element_settings() -> None:
    schema = {
        "type": "object",
        "required": ["n", "title"],
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2, "description": "How many"},
            "x": {"type": "number", "minimum": 0.0},
            "title": {
                "type": "string",
                "title": "Release title",
                "maxLength": 9000,
                "x-placeholder": "p" * 200,
            },
        },
    }
    n, x, title = schema_to_blocks(schema)
    assert n["element"] == {
        "type": "number_input",
        "action_id": "value",
        "is_decimal_allowed": False,
        "min_value": "1",
        "max_value": "10",
        "initial_value": "2",
    }
    assert n["optional"] is False
    assert n["hint"]["text"] == "How many"
    assert x["element"]["is_decimal_allowed"] is True
    assert x["optional"] is True
    assert title["label"]["text"] == "Release title"
    assert title["element"]["multiline"] is True
    assert title["element"]["max_length"] == 3000
    assert len(title["element"]["placeholder"]["text"]) <= 150
    validate_blocks([n, x, title])


def test_values_win_over_defaults_and_prefix_is_used() -> None:
    schema = {"type": "object", "properties": {"env": {"type": "string", "enum": ["a", "b"], "default": "a"}}}
    [block] = schema_to_blocks(schema, values={"env": "b"}, prefix="edit")
    assert block["block_id"] == "edit:env"
    assert block["element"]["initial_option"]["value"] == "b"


def test_many_and_long_enum_values() -> None:
    long_values = [f"option-{i}-" + "x" * 100 for i in range(150)]
    schema = {
        "type": "object",
        "properties": {
            "pick": {"type": "string", "enum": long_values},
            "many": {
                "type": "array",
                "items": {"type": "string", "enum": [f"v{i}" for i in range(30)]},
                "maxItems": 3,
            },
            "num": {"type": "integer", "enum": [1, 2, 3]},
        },
    }
    pick, many, num = schema_to_blocks(schema, values={"pick": long_values[120], "num": 2})
    validate_blocks([pick, many, num])
    assert pick["element"]["type"] == "static_select"
    groups = pick["element"]["option_groups"]
    assert all(len(g["options"]) <= 100 for g in groups)
    values = [o["value"] for g in groups for o in g["options"]]
    assert all(len(v) <= 75 for v in values)
    assert pick["element"]["initial_option"]["value"] == "#120"
    assert many["element"]["type"] == "multi_static_select"
    assert many["element"]["max_selected_items"] == 3
    assert num["element"]["initial_option"]["value"] == "#1"

    state = {
        **slack_state(pick, "#120"),
        **slack_state(many, ["v3", "v29"]),
        **slack_state(num, "#2"),
    }
    data, errors = parse_submission(schema, state)
    assert errors == {}
    assert data == {"pick": long_values[120], "many": ["v3", "v29"], "num": 3}


def test_long_field_name_keeps_block_id_within_255() -> None:
    name = "n" * 400
    schema = {"type": "object", "properties": {name: {"type": "string", "title": "L" * 3000}}}
    [block] = schema_to_blocks(schema)
    assert len(block["block_id"]) <= 255
    assert block["block_id"] == block_id_for(name)
    assert len(block["label"]["text"]) <= 2000
    data, _ = parse_submission(schema, slack_state(block, "v"))
    assert data == {name: "v"}


SCHEMA = {
    "type": "object",
    "required": ["title", "priority", "replicas"],
    "properties": {
        "title": {"type": "string", "maxLength": 150},
        "priority": {"type": "string", "enum": ["low", "medium", "high"]},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 5},
        "due_date": {"type": "string", "format": "date"},
        "flags": {"type": "array", "items": {"enum": ["notify", "dry_run", "skip_tests"]}},
    },
}


def _fixture_values() -> dict[str, Any]:
    payload = json.loads((FIXTURES / "view_submission_inputs.json").read_text())
    values: dict[str, Any] = payload["view"]["state"]["values"]
    return values


def test_the_fixture_submission_parses() -> None:
    data, errors = parse_submission(SCHEMA, _fixture_values(), prefix="")
    assert errors == {}
    assert data == {
        "title": "Deploy api v2.3",
        "priority": "high",
        "replicas": 3,
        "due_date": "2026-08-14",
        "flags": ["notify", "dry_run"],
    }


def test_fixture_errors_are_keyed_by_block_id() -> None:
    values = _fixture_values()
    values["replicas"]["value"]["value"] = "7"
    values["title"]["value"]["value"] = None
    values["due_date"]["value"]["selected_date"] = None
    data, errors = parse_submission(SCHEMA, values, prefix="")
    assert errors == {"replicas": "Must be at most 5", "title": "Required"}
    assert "due_date" not in data  # empty optional fields are omitted


@pytest.mark.parametrize(
    ("prop", "raw", "message"),
    [
        ({"type": "integer", "minimum": 0}, "-1", "Must be at least 0"),
        ({"type": "integer"}, "abc", "Must be a whole number"),
        ({"type": "number"}, "1e999", "Must be a number"),
        ({"type": "string", "format": "email"}, "not-an-email", "Not a valid email address"),
        ({"type": "string", "format": "uri"}, "nope", "Not a valid URL"),
        ({"type": "string", "minLength": 5}, "abc", "Must be at least 5 characters"),
        ({"type": "string", "pattern": "^v\\d+$"}, "x1", "Does not match the expected format"),
        ({"type": "string", "pattern": "^v\\d+$", "x-error": "Use v1, v2, …"}, "x1", "Use v1, v2, …"),
        ({"type": "object"}, "{oops", "Not valid JSON"),
    ],
)
def test_human_messages(prop: dict[str, Any], raw: str, message: str) -> None:
    schema = {"type": "object", "properties": {"f": prop}}
    [block] = schema_to_blocks(schema)
    _, errors = parse_submission(schema, slack_state(block, raw))
    assert errors == {"f:f": message}


def test_errors_outside_the_form_go_to_the_general_key() -> None:
    schema = {
        "type": "object",
        "required": ["a", "b"],
        "properties": {"a": {"type": "string"}, "b": {"type": "integer", "maximum": 3}},
        "additionalProperties": False,
    }
    [block] = schema_to_blocks(schema, only=["a"])
    data, errors = parse_submission(schema, slack_state(block, "x"), base={"b": 9})
    assert data == {"a": "x", "b": 9}
    assert errors == {GENERAL_ERROR_KEY: "B: Must be at most 3"}


def test_boolean_unchecked_is_false_and_block_is_optional() -> None:
    schema = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
    [block] = schema_to_blocks(schema)
    assert block["optional"] is True
    data, errors = parse_submission(schema, slack_state(block, []))
    assert (data, errors) == ({"ok": False}, {})


def test_validate_data() -> None:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 0}}}
    assert validate_data(schema, {"n": 1}) == {}
    assert validate_data(schema, {}) == {"n": "Required"}
    assert validate_data(schema, {"n": -2}) == {"n": "Must be at least 0"}
    assert validate_data(schema, []) == {GENERAL_ERROR_KEY: "Must be an object"}
