"""Shown = executed on every Slack surface that offers a decision (invariant 20).

Each test fails when any field Approve passes on (every key of ``proposed``) is missing from
what a person sees, or is shown as something other than labelled plain text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.blocks import checkpoint as cpb
from bot.blocks.home import home_view
from bot.blocks.modals import CHOICE_BLOCK, CONFIRM_BLOCK, answer_modal, confirm_modal, edit_modal
from engine.model import Checkpoint
from tests.unit.bot._visible import missing_fields, shows_field, visible
from tests.unit.bot.test_checkpoint_blocks import check_message, check_view, make_cp, make_decision
from tests.unit.bot.test_home import check as check_home

SCHEMA = {
    "type": "object",
    "required": ["account", "amount"],
    "properties": {
        "amount": {"type": "number", "title": "Amount (USD)"},
        "account": {"type": "string", "title": "Account"},
        "memo": {"type": "string"},
    },
}
# amount and account have schema titles; memo has none; extra is passed on without being in the schema
PROPOSED = {"account": "DE00-ATTACKER-9999", "amount": 120, "memo": "May invoice", "extra": {"iban": "X"}}


def pay(**changes: Any) -> Checkpoint:
    fields: dict[str, Any] = {
        "title": "Pay ACME",
        "prompt": "Pay the supplier?",
        "context": {"customer": "ACME", "note": "hello\n*Account*\nDE89-REAL-PAYROLL"},
        "response_schema": SCHEMA,
        "proposed": PROPOSED,
    }
    return make_cp(**(fields | changes))


def long_pay(**changes: Any) -> Checkpoint:
    """A proposal too long for a card: one value over a section field's 2,000 characters."""
    return pay(proposed={**PROPOSED, "memo": "m" * 2500 + " END"}, **changes)


def many_pay(**changes: Any) -> Checkpoint:
    """More fields than a card shows."""
    return pay(proposed={**PROPOSED, **{f"line_{i}": f"item {i}" for i in range(25)}}, **changes)


def actions_of(surface: dict[str, Any]) -> set[str]:
    return {
        e["action_id"].split(":")[0]
        for b in surface["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }


def test_card_shows_every_executed_field_labelled() -> None:
    cp = pay()
    message = cpb.checkpoint_message(cp)
    check_message(message)
    assert missing_fields(message["blocks"], cp) == []
    assert shows_field(message["blocks"], "Account", "DE00-ATTACKER-9999")
    assert shows_field(message["blocks"], "Amount (USD)", "120")
    assert shows_field(message["blocks"], "Extra", '{"iban": "X"}')
    assert cpb.APPROVE in actions_of(message)


@pytest.mark.parametrize("make", [long_pay, many_pay], ids=["long value", "many fields"])
def test_card_without_room_offers_review_never_one_click_approve(make: Any) -> None:
    cp = make(options=["approve", "reject", "edit", "pay_later"])
    message = cpb.checkpoint_message(cp)
    check_message(message)
    offered = actions_of(message)
    assert cpb.APPROVE not in offered
    assert cpb.OPTION not in offered, "a custom option passes the proposal on too"
    assert {cpb.REVIEW, cpb.REJECT, cpb.EDIT} <= offered
    review = confirm_modal(cp, choose=True)
    check_view(review)
    assert missing_fields(review["blocks"], cp) == []
    assert review["callback_id"] == cpb.CONFIRM_SUBMIT
    choice = next(b for b in review["blocks"] if b.get("block_id") == CHOICE_BLOCK)
    assert [o["value"] for o in choice["element"]["options"]] == ["approve", "pay_later"]
    only_option = confirm_modal(make(options=["reject", "pay_later"]), choose=True)
    choice = next(b for b in only_option["blocks"] if b.get("block_id") == CHOICE_BLOCK)
    assert [o["value"] for o in choice["element"]["options"]] == ["pay_later"]


def test_decided_card_shows_what_was_passed_on() -> None:
    cp = pay()
    message = cpb.decided_message(cp, make_decision(data=dict(cp.proposed)), before=cp.proposed)
    check_message(message)
    assert missing_fields(message["blocks"], cp) == []
    edited = {**cp.proposed, "account": "DE89-REAL-PAYROLL"}
    after_edit = cpb.decided_message(cp, make_decision(action="edit", data=edited), before=cp.proposed)
    assert missing_fields(after_edit["blocks"], cp, edited) == []


@pytest.mark.parametrize("make", [pay, long_pay], ids=["fits", "too long"])
def test_home_item_never_offers_approve_next_to_a_proposal_it_does_not_show(make: Any) -> None:
    cp = make()
    view = home_view(waiting=[cp], requests=[], decided=[])
    check_home(view)
    if cpb.APPROVE in actions_of(view):
        assert missing_fields(view["blocks"], cp) == []
    else:
        assert cpb.REVIEW in actions_of(view)
    assert (cpb.APPROVE in actions_of(view)) is (make is pay)


def test_confirm_word_modal_shows_the_whole_proposal() -> None:
    for cp in (pay(confirm="PAY"), long_pay(confirm="PAY")):
        view = confirm_modal(cp)
        check_view(view)
        assert missing_fields(view["blocks"], cp) == []
        assert CONFIRM_BLOCK in [b.get("block_id") for b in view["blocks"]]


def test_a_proposal_no_modal_can_hold_offers_no_decision() -> None:
    cp = pay(proposed={**PROPOSED, "memo": "x" * 400_000})
    for view in (confirm_modal(cp, choose=True), edit_modal(cp)):
        check_view(view)
        assert "submit" not in view
        assert "callback_id" not in view
        assert "too long to show in full" in " ".join(t for _, t in visible(view["blocks"]))


def test_edit_and_answer_forms_show_the_values_they_keep() -> None:
    kept = {**PROPOSED, "memo": "k" * 4000}  # longer than a Slack input: kept, not editable here
    cp = pay(proposed=kept)
    view = edit_modal(cp)
    check_view(view)
    inputs = {b["block_id"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs == {"f:amount", "f:account"}
    assert missing_fields(view["blocks"], cp, {"memo": kept["memo"], "extra": kept["extra"]}) == []
    answer = answer_modal(pay(kind="input", proposed=kept, options=["reject"]))
    check_view(answer)
    assert missing_fields(answer["blocks"], cp, {"memo": kept["memo"], "extra": kept["extra"]}) == []


@pytest.mark.parametrize("size", [20, 25], ids=["full card", "past a card's room"])
def test_the_largest_cards_stay_within_slack_limits(size: int) -> None:
    cp = pay(
        context={f"c_{i}": "v" * 3000 for i in range(60)},
        highlight=[f"c_{i}" for i in range(6)],
        proposed={f"p_{i}": "w" * 400 for i in range(size)},
        options=["approve", "reject", "edit", *[f"opt{i}" for i in range(30)]],
        quorum=3,
        approvals=["U1", "U2"],
    )
    message = cpb.checkpoint_message(cp, web_url="https://signoff.example/cp/cp_7")
    check_message(message)
    assert (cpb.APPROVE in actions_of(message)) is (size == 20)
    check_message(cpb.decided_message(cp, make_decision(data=dict(cp.proposed))))


def test_home_pages_stay_under_100_blocks_and_250_kb_with_full_proposals() -> None:
    waiting = [pay(id=f"cp_{i}", proposed={f"p_{j}": "z" * 1500 for j in range(5)}) for i in range(60)]
    page, pages = 0, 0
    while True:
        view = home_view(waiting=waiting, requests=[], decided=[], page=page)
        check_home(view)
        assert len(json.dumps(view).encode()) < 250_000
        pages += 1
        following = [
            e["value"]
            for b in view["blocks"]
            for e in b.get("elements", [])
            if e.get("text", {}).get("text") == "Next page"
        ]
        if not following:
            break
        page = int(following[0])
    assert pages > 1
