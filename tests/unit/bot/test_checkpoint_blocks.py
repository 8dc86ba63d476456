"""Checkpoint cards and modals: structure, ids-only values, Slack limits, truncation, decided state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.blocks import checkpoint as cpb
from bot.blocks.forms import parse_submission
from bot.blocks.modals import checkpoint_ref, form_schema
from bot.blocks.run_inputs import read_run_metadata
from engine.model import Checkpoint, Decision, Priority, ResolvedBy, Run, RunStatus

T0 = datetime(2026, 8, 14, 10, 32, tzinfo=UTC)


def make_cp(**changes: Any) -> Checkpoint:
    base: dict[str, Any] = {
        "id": "cp_7",
        "run_id": "run_3",
        "node_id": "approve_deploy",
        "version": 2,
        "title": "Deploy api v2.3",
        "prompt": "Ship *v2.3* to production?",
        "context": {"environment": "production", "version": "v2.3.0", "risk": "low"},
        "options": ["approve", "reject", "edit"],
        "proposed": {"replicas": 3, "note": "go"},
        "response_schema": {
            "type": "object",
            "required": ["replicas"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 1, "maximum": 5},
                "note": {"type": "string"},
            },
        },
        "requester": "UREQ",
        "created_at": T0,
    }
    return Checkpoint(**(base | changes))


def make_decision(**changes: Any) -> Decision:
    base: dict[str, Any] = {
        "id": "d_1",
        "checkpoint_id": "cp_7",
        "run_id": "run_3",
        "action": "approve",
        "actor": "U123",
        "channel": "slack",
        "created_at": T0,
    }
    return Decision(**(base | changes))


def check_message(message: dict[str, Any]) -> None:
    assert 0 < len(message["text"]) <= 4000
    assert len(message["blocks"]) <= 50
    ids = [b["block_id"] for b in message["blocks"]]
    assert len(ids) == len(set(ids))
    for block in message["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()


def check_view(view: dict[str, Any]) -> None:
    View(**view).validate_json()
    assert len(view["title"]["text"]) <= 24
    assert len(view["blocks"]) <= 100
    assert len(view.get("private_metadata", "")) <= 3000
    assert len(json.dumps(view).encode()) < 250_000


def elements(message: dict[str, Any], block_type: str = "actions") -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == block_type for e in b["elements"]]


def test_open_card_structure() -> None:
    message = cpb.checkpoint_message(
        make_cp(options=["approve", "reject", "edit", "defer"]), workflow_title="Release"
    )
    check_message(message)
    kinds = [(b["type"], b["block_id"].split(":")[0]) for b in message["blocks"]]
    assert kinds == [
        ("header", "header"),
        ("section", "prompt"),
        ("section", "ctx0"),
        ("section", "prop0"),
        ("context", "meta"),
        ("actions", "actions"),
    ]
    assert message["blocks"][0]["text"]["text"] == "Deploy api v2.3"
    buttons = {e["action_id"]: e for e in elements(message)}
    assert buttons["checkpoint.approve"]["style"] == "primary"
    assert buttons["checkpoint.reject"]["style"] == "danger"
    assert buttons["checkpoint.edit"]["value"] == "cp_7"
    assert buttons["checkpoint.option"]["value"] == "cp_7|defer"
    assert "Requested by <@UREQ>" in json.dumps(message)


def test_button_values_carry_ids_only() -> None:
    cp = make_cp(options=["approve", "reject", "edit", "escalate"], context={"log": "x" * 10_000})
    message = cpb.checkpoint_message(cp)
    values = [e.get("value") for e in elements(message)]
    values += [b["accessory"].get("value") for b in message["blocks"] if "accessory" in b]
    for value in filter(None, values):
        assert value.split("|")[0].split(":")[0] == cp.id
        assert len(value) < 100


def test_block_ids_change_with_the_version() -> None:
    first = cpb.checkpoint_message(make_cp(version=1))
    second = cpb.checkpoint_message(make_cp(version=2))
    assert not {b["block_id"] for b in first["blocks"]} & {b["block_id"] for b in second["blocks"]}
    actions = next(b for b in second["blocks"] if b["type"] == "actions")
    assert cpb.parse_block_id(actions["block_id"]) == ("cp_7", 2)


@pytest.mark.parametrize(("priority", "marker"), [(Priority.urgent, "Urgent"), (Priority.high, "High")])
def test_priority_in_header(priority: Priority, marker: str) -> None:
    header = cpb.checkpoint_message(make_cp(priority=priority))["blocks"][0]["text"]["text"]
    assert marker in header
    assert len(header) <= 150
    assert "Urgent" not in cpb.checkpoint_message(make_cp())["blocks"][0]["text"]["text"]


def test_highlighted_fields_come_first_and_stand_out() -> None:
    cp = make_cp(highlight=["risk", "missing"])
    blocks = cpb.checkpoint_message(cp)["blocks"]
    highlight = blocks[2]
    assert highlight["type"] == "section"
    assert [f["text"] for f in highlight["fields"]] == ["*:star: Risk*", "low"]
    fields = next(b for b in blocks if b["block_id"].startswith("ctx"))["fields"]
    assert [(f["type"], f["text"]) for f in fields] == [
        ("mrkdwn", "*Environment*"),
        ("plain_text", "production"),
        ("mrkdwn", "*Version*"),
        ("plain_text", "v2.3.0"),
    ]


def test_one_megabyte_context_is_truncated_and_reachable() -> None:
    huge = "line of log output\n" * 55_000  # about 1 MB
    cp = make_cp(context={"log": huge, "summary": "s" * 5000}, highlight=["summary"], prompt="p" * 5000)
    message = cpb.checkpoint_message(cp, web_url="https://signoff.example/cp/cp_7")
    check_message(message)
    assert len(json.dumps(message)) < 20_000
    show = [e for e in elements(message) if e["action_id"].startswith("checkpoint.show_full")]
    show += [
        b["accessory"] for b in message["blocks"] if b.get("accessory", {}).get("action_id") == cpb.SHOW_FULL
    ]
    targets = {cpb.parse_show_full(e["value"]) for e in show}
    assert targets == {("cp_7", "log"), ("cp_7", "summary"), ("cp_7", cpb.PROMPT_FIELD)}
    modal = cpb.full_text_modal("Log", cp.context["log"], url="https://signoff.example/cp/cp_7")
    check_view(modal)
    shown = "".join(b["text"]["text"] for b in modal["blocks"] if b["block_id"].startswith("t"))
    assert huge.startswith(shown)
    assert "Showing the first" in json.dumps(modal)


def test_many_fields_stay_within_limits() -> None:
    cp = make_cp(
        context={f"field_{i}": "v" * 3000 for i in range(60)}, options=[f"opt{i}" for i in range(40)]
    )
    message = cpb.checkpoint_message(cp)
    check_message(message)
    assert "+40 more fields" in json.dumps(message)
    assert all(len(b.get("fields", [])) <= 10 for b in message["blocks"])


def test_due_time_quorum_and_delegation() -> None:
    cp = make_cp(due_at=T0 + timedelta(hours=2, minutes=5), quorum=2, approvals=["U1"])
    run = Run(
        id="run_3",
        workflow_id="release",
        workflow_hash="h",
        status=RunStatus.waiting,
        inputs={},
        requester="UREQ",
        created_at=T0,
        updated_at=T0,
    )
    text = json.dumps(cpb.checkpoint_message(cp, run=run, now=T0, delegated_from={"U9": "U8"}))
    assert "Due in *2h 5m*" in text
    assert "1 of 2 approvals, waiting for 1 more" in text
    assert "approved by <@U1>" in text
    assert "<@U9> on behalf of <@U8>" in text
    assert "run `run_3`" in text


def test_input_checkpoint_has_answer_button() -> None:
    message = cpb.checkpoint_message(make_cp(kind="input", options=["reject"]))
    assert [e["action_id"] for e in elements(message)] == ["checkpoint.answer", "checkpoint.reject"]


def test_decided_message_has_no_actions_and_shows_the_diff() -> None:
    cp = make_cp(context={"log": "x" * 5000})
    decision = make_decision(action="edit", data={"replicas": 4, "note": "go"}, comment="one more")
    message = cpb.decided_message(cp, decision, before=cp.proposed)
    check_message(message)
    assert all(b["type"] != "actions" and "accessory" not in b for b in message["blocks"])
    text = json.dumps(message, ensure_ascii=False)
    assert "Edited by <@U123> at 10:32 UTC" in text
    assert "~3~ → 4" in text
    assert "Note" not in text.split("Changes")[1]  # unchanged fields are not listed
    assert "> one more" in text


def test_approved_line() -> None:
    message = cpb.decided_message(make_cp(), make_decision())
    assert "Approved by <@U123> at 10:32 UTC" in message["text"]


@pytest.mark.parametrize("resolved_by", [ResolvedBy.timeout, ResolvedBy.policy])
def test_policy_decisions_never_credit_a_person(resolved_by: ResolvedBy) -> None:
    decision = make_decision(action="reject", actor="U123", resolved_by=resolved_by, rule="auto_reject")
    text = json.dumps(cpb.decided_message(make_cp(), decision), ensure_ascii=False)
    assert "<@U123>" not in text
    assert "policy (auto_reject)" in text
    if resolved_by is ResolvedBy.timeout:
        assert "Timed out — resolved by policy (auto_reject)" in text


def test_modals() -> None:
    cp = make_cp(confirm="production")
    for view in (
        cpb.reject_modal(cp),
        cpb.edit_modal(cp),
        cpb.answer_modal(cp),
        cpb.confirm_modal(cp),
        cpb.full_text_modal("A very long title for a modal", "short"),
    ):
        check_view(view)
    edit = cpb.edit_modal(cp)
    assert edit["callback_id"] == "checkpoint.edit_submit"
    assert checkpoint_ref(edit["private_metadata"]) == ("cp_7", 2)
    assert json.loads(edit["private_metadata"]) == {"checkpoint_id": "cp_7", "version": 2}
    replicas = next(b for b in edit["blocks"] if b["block_id"] == "f:replicas")
    assert replicas["element"]["initial_value"] == "3"
    state = {"f:replicas": {"value": {"type": "number_input", "value": "9"}}}
    assert parse_submission(form_schema(cp), state)[1] == {"f:replicas": "Must be at most 5"}
    assert "production" in json.dumps(cpb.confirm_modal(cp))


def test_edit_modal_without_schema_uses_proposed_values() -> None:
    view = cpb.edit_modal(make_cp(response_schema={}, proposed={"title": "x", "n": 2, "on": True}))
    check_view(view)
    kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert kinds == {"f:title": "plain_text_input", "f:n": "number_input", "f:on": "checkboxes"}


SCHEMA = {
    "type": "object",
    "required": ["service", "replicas"],
    "properties": {
        "service": {"type": "string"},
        "replicas": {"type": "integer", "maximum": 5},
        "note": {"type": "string"},
    },
}


def test_run_inputs_modal_asks_only_missing_or_invalid_fields() -> None:
    view = cpb.run_inputs_modal(
        "deploy",
        "Deploy a service",
        SCHEMA,
        values={"service": "api", "replicas": 9},
        only_fields=None,
        channel_id="C1",
    )
    check_view(view)
    assert view["callback_id"] == "run.inputs_submit"
    inputs = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert inputs == ["f:replicas"]
    assert "initial_value" not in view["blocks"][1]["element"]  # an invalid value is not pre-filled
    assert read_run_metadata(view["private_metadata"]) == ("deploy", "C1", {"service": "api"})


def test_run_inputs_modal_drops_values_that_do_not_fit() -> None:
    big = "x" * 2990
    view = cpb.run_inputs_modal(
        "deploy",
        "Deploy",
        SCHEMA,
        values={"service": "api", "note": big},
        only_fields=["replicas"],
        channel_id=None,
    )
    check_view(view)
    assert read_run_metadata(view["private_metadata"]) == ("deploy", None, {})
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert list(inputs) == ["f:service", "f:replicas", "f:note"]
    assert inputs["f:service"]["element"]["initial_value"] == "api"


def test_action_ids_are_unique_within_each_block() -> None:
    cp = make_cp(
        options=["approve", "reject", "escalate", "defer", "ask_legal"],
        context={"a": "x" * 1000, "b": "y" * 1000, "c": "z" * 1000},
    )
    surfaces: list[dict[str, Any]] = [cpb.checkpoint_message(cp), home_view_of(cp)]
    for surface in surfaces:
        for block in surface["blocks"]:
            ids = [e["action_id"] for e in block.get("elements", []) if "action_id" in e]
            assert len(ids) == len(set(ids)), ids


def home_view_of(cp: Checkpoint) -> dict[str, Any]:
    from bot.blocks.home import home_view

    return home_view(waiting=[cp], requests=[], decided=[])


def test_a_value_too_long_for_slack_is_kept_not_cut() -> None:
    from bot.blocks.modals import edit_modal, kept_fields

    long_note = "n" * 5000
    cp = make_cp(proposed={"replicas": 3, "note": long_note})
    modal = edit_modal(cp)
    ids = [b.get("block_id") for b in modal["blocks"]]
    assert "f:replicas" in ids
    assert "f:note" not in ids
    assert "too long to edit in Slack" in json.dumps(modal)
    values = {"f:replicas": {"value": {"type": "number_input", "value": "4"}}}
    data, errors = parse_submission(form_schema(cp), values, base=kept_fields(cp))
    assert errors == {}
    assert data == {"replicas": 4, "note": long_note}
