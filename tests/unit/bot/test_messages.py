"""User-facing texts: stable codes, the wording people see, and the public API of bot.blocks."""

from __future__ import annotations

from datetime import UTC, datetime

import bot.blocks
from bot import messages
from bot.messages import ErrorCode


def test_already_decided_names_who_and_when() -> None:
    notice = messages.already_decided("approved", "U1", datetime(2026, 8, 14, 10, 32, tzinfo=UTC))
    assert notice.code is ErrorCode.ALREADY_DECIDED
    assert notice.text == "Already approved by <@U1> at 10:32 UTC."
    by_policy = messages.already_decided(
        "rejected", "auto_reject", datetime(2026, 1, 1, tzinfo=UTC), by_policy=True
    )
    assert by_policy.text == "Already rejected by policy (auto_reject) at 00:00 UTC."


def test_unknown_workflow_suggests_close_matches() -> None:
    notice = messages.unknown_workflow("deplyo", ["deploy", "rollback", "deploy-canary"])
    assert notice.code is ErrorCode.UNKNOWN_WORKFLOW
    assert "`deploy`" in notice.text
    assert "rollback" not in notice.text
    assert "/signoff list" in messages.unknown_workflow("zzz", ["deploy"]).text


def test_help_lists_every_command() -> None:
    for command in (
        "run <workflow> key=value",
        "list",
        "status <run>",
        "inbox",
        "cancel <run>",
        "pause <run>",
        "resume <run>",
        "delegate @user until YYYY-MM-DD",
        "help",
    ):
        assert f"/signoff {command}" in messages.HELP
    assert messages.unknown_command("frobnicate").code is ErrorCode.UNKNOWN_COMMAND
    assert len(messages.unknown_command("x" * 5000).text) <= 4000


def test_refusals_carry_codes() -> None:
    assert (
        messages.not_assignee(["U1", "S0OPS"]).text
        == "Only <@U1>, <!subteam^S0OPS> can decide this. Nothing was changed."
    )
    assert messages.self_approval().code is ErrorCode.SELF_APPROVAL
    assert messages.invalid_input({"n": "Required", "": "Bad"}).text.endswith("• Bad")
    assert messages.run_started("Deploy", "run_1").code is None


def test_public_api_is_pinned() -> None:
    assert sorted(bot.blocks.__all__) == [
        "answer_modal",
        "checkpoint_message",
        "confirm_modal",
        "decided_message",
        "edit_modal",
        "full_text_modal",
        "home_view",
        "parse_submission",
        "reject_modal",
        "run_inputs_modal",
        "schema_to_blocks",
        "validate_data",
    ]
    assert {c.value for c in ErrorCode} >= {
        "not_assignee",
        "already_decided",
        "self_approval",
        "unknown_workflow",
    }
