"""The verifier on Slack: the question in the thread, the reopened forms, the flagged card."""

from __future__ import annotations

import json

import pytest

from bot.blocks import checkpoint as cpb
from bot.blocks.modals import CONFIRM_BLOCK, CONFIRM_SUBMIT, REASON_BLOCK, again_modal
from tests.unit.bot.test_checkpoint_blocks import check_message, check_view, elements, make_cp, make_decision


def test_question_has_a_reopen_button_with_ids_only() -> None:
    cp = make_cp()
    message = cpb.question_message(cp, "Which <policy> is broken?", action="reject", reopen="cp_7|dlv_9")
    check_message(message)
    assert "Before your rejection of *Deploy api v2.3* counts: Which &lt;policy&gt; is broken?" in json.dumps(
        message
    )
    (button,) = elements(message)
    assert (button["action_id"], button["value"]) == (cpb.REOPEN, "cp_7|dlv_9")


def test_question_about_a_custom_option_points_back_to_the_request() -> None:
    message = cpb.question_message(make_cp(), "Why?", action="escalate_to_legal", reopen=None)
    check_message(message)
    assert not elements(message)
    assert "choose again" in json.dumps(message)


@pytest.mark.parametrize(
    ("asked", "callback", "block", "prefilled"),
    [
        ({"action": "reject", "comment": "no"}, "checkpoint.reject_submit", REASON_BLOCK, "no"),
        ({"action": "edit", "data": {"replicas": 4}}, "checkpoint.edit_submit", "f:replicas", "4"),
        ({"action": "approve", "comment": "ok"}, CONFIRM_SUBMIT, REASON_BLOCK, "ok"),
    ],
)
def test_reopened_forms_are_prefilled(
    asked: dict[str, object], callback: str, block: str, prefilled: str
) -> None:
    view = again_modal(make_cp(), asked)
    assert view is not None
    check_view(view)
    assert view["callback_id"] == callback
    field = next(b for b in view["blocks"] if b.get("block_id") == block)
    assert field["element"]["initial_value"] == prefilled


def test_reopened_approval_keeps_the_confirm_word() -> None:
    view = again_modal(make_cp(confirm="production"), {"action": "approve", "comment": ""})
    assert view is not None
    inputs = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert inputs == [CONFIRM_BLOCK, REASON_BLOCK]
    assert again_modal(make_cp(), {"action": "escalate_to_legal"}) is None


def test_flagged_decision_says_so_on_the_card() -> None:
    message = cpb.decided_message(make_cp(), make_decision(), flagged="No reason <given>.")
    check_message(message)
    text = json.dumps(message, ensure_ascii=False)
    assert "Flagged by the reviewer:* No reason &lt;given&gt;." in text
    assert "(flagged)" in message["text"]
    assert "Flagged" not in json.dumps(cpb.decided_message(make_cp(), make_decision()))
