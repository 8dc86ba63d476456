"""Data cannot imitate the product's labels, mentions or links in anything sent to Slack.

Every piece of data below carries the three attacks of issue 10 (part 7): a broadcast mention,
a link whose text lies about its target, and a new line followed by a bold label.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot import messages
from bot.blocks import checkpoint as cpb
from bot.blocks._kit import mention, principal
from bot.blocks.home import home_view
from bot.blocks.modals import confirm_modal, edit_modal, reject_modal
from bot.blocks.notices import notice_message
from bot.slack._escalation import escalation_note, reminder_text
from bot.slack.listeners._common import form_fallback
from engine.model import ResolvedBy
from tests.unit.bot._visible import mrkdwn_texts, shows_field, visible
from tests.unit.bot.test_checkpoint_blocks import make_cp, make_decision
from tests.unit.bot.test_home import run as home_run

FORGED = "<!channel> <https://evil.example|https://bank.example>\n*Account*\nDE89-REAL-PAYROLL"
RAW = ("<!channel>", "<https://evil", "|https://bank", "\n*Account*", "*Account*\n")


def inert(text: str) -> None:
    """No attack survives as markup in ``text``."""
    for raw in RAW:
        assert raw not in text, raw


def all_mrkdwn_inert(surface: dict[str, Any]) -> None:
    for text in mrkdwn_texts(surface.get("blocks", [])):
        inert(text)
    if "text" in surface and isinstance(surface["text"], str):
        inert(surface["text"])


def forged_cp(**changes: Any) -> Any:
    fields: dict[str, Any] = {
        "title": f"Pay {FORGED}",
        "prompt": "Pay the supplier?",
        "requester": "<!channel>",
        "context": {"customer": FORGED, "note": FORGED},
        "highlight": ["note"],
        "response_schema": {
            "type": "object",
            "properties": {"account": {"type": "string", "title": "Account"}},
        },
        "proposed": {"account": "DE00-ATTACKER-9999", "memo": FORGED},
        "approvals": ["<!here>"],
        "quorum": 2,
        "delegations": {"<!everyone>": "U123"},
    }
    return make_cp(**(fields | changes))


def test_mentions_only_for_well_formed_slack_ids() -> None:
    assert mention("U0123ABC") == "<@U0123ABC>"
    assert mention("W0123ABC") == "<@W0123ABC>"
    assert mention("S0OPS") == "<!subteam^S0OPS>"
    assert mention("C0DEMO") == "<#C0DEMO>"
    for forged in ("<!channel>", "<@U1>", "<https://evil|bank>", "alice", "U1>", "u123", "U1 x"):
        assert "<" not in mention(forged), forged
        assert ">" not in mention(forged), forged
    assert mention("<!channel>") == "&lt;!channel&gt;"
    assert principal("user:<!channel>") == "&lt;!channel&gt;"
    assert principal("group:S0OPS") == "<!subteam^S0OPS>"
    assert principal("role:<!here>") == "the &lt;!here&gt; role"


def test_card_fallback_text_and_every_mrkdwn_text_are_inert() -> None:
    cp = forged_cp()
    message = cpb.checkpoint_message(cp, workflow_title=FORGED, delegated_from=cp.delegations)
    all_mrkdwn_inert(message)
    assert "Requested by &lt;!channel&gt;" in json.dumps(message)
    # the forged note is a plain-text value; the only product label "Account" shows the real value
    assert shows_field(message["blocks"], "Note", FORGED) or shows_field(
        message["blocks"], ":star: Note", FORGED
    )
    assert shows_field(message["blocks"], "Account", "DE00-ATTACKER-9999")
    accounts = [t for kind, t in visible(message["blocks"]) if kind == "mrkdwn" and "*Account*" in t]
    assert accounts == ["*Account*"], "data never produces a bold Account label"


def test_decided_card_comment_diff_and_flag_are_inert() -> None:
    cp = forged_cp()
    decision = make_decision(action="edit", actor="<!here>", data={"account": FORGED}, comment=FORGED)
    message = cpb.decided_message(cp, decision, before=cp.proposed, flagged=FORGED)
    all_mrkdwn_inert(message)
    for resolved_by in (ResolvedBy.timeout, ResolvedBy.policy):
        policy = make_decision(action="reject", resolved_by=resolved_by, rule=FORGED)
        all_mrkdwn_inert(cpb.decided_message(cp, policy))


def test_home_modals_and_questions_are_inert() -> None:
    cp = forged_cp()
    all_mrkdwn_inert(home_view(waiting=[cp], requests=[], decided=[(cp, make_decision(actor=FORGED))]))
    for view in (confirm_modal(cp, comment=FORGED), edit_modal(cp), reject_modal(cp, reason=FORGED)):
        all_mrkdwn_inert(view)
    all_mrkdwn_inert(cpb.question_message(cp, FORGED, action="option:x", reopen=None))
    all_mrkdwn_inert(form_fallback("edit", cp.id, FORGED))


def test_requester_notices_are_plain_text() -> None:
    message = notice_message(f"Pay {FORGED}: approved by <!here>", FORGED)
    inert(message["text"])
    assert [b["text"]["type"] for b in message["blocks"]] == ["plain_text", "plain_text"]
    assert message["blocks"][0]["text"]["text"] == f"Pay {FORGED}: approved by <!here>"
    assert all(b["text"]["emoji"] is False for b in message["blocks"])


def test_reminders_and_escalations_are_inert() -> None:
    inert(reminder_text(FORGED, 3600))
    note = escalation_note({"escalation": "escalate", "waited_s": 60, "from": [f"user:{FORGED}", "role:x"]})
    assert note is not None
    inert(note)


@pytest.mark.parametrize(
    "notice",
    [
        messages.not_allowed(FORGED),
        messages.already_decided("approve", FORGED, make_cp().created_at),
        messages.already_decided("approve", FORGED, make_cp().created_at, by_policy=True),
        messages.not_assignee([f"user:{FORGED}", FORGED]),
        messages.invalid_input({FORGED: FORGED}),
        messages.run_not_found(FORGED),
        messages.run_finished(FORGED, FORGED),
        messages.run_started(FORGED, FORGED),
        messages.delegation_set(FORGED, FORGED),
        messages.workflow_list([(FORGED, FORGED)]),
        messages.unknown_workflow(FORGED, [FORGED]),
        messages.run_status(
            home_run(1).model_copy(update={"reason": FORGED, "workflow_id": FORGED}),
            [forged_cp(assignees=[f"user:{FORGED}"])],
        ),
        messages.waiting_list([forged_cp()]),
    ],
    ids=lambda n: n.code.value if n.code else n.text[:20],
)
def test_every_notice_is_inert(notice: messages.Notice) -> None:
    inert(notice.text)


def test_a_prompt_is_markup_only_when_the_checkpoint_rendered_it_so() -> None:
    from engine.shown import shown_hash

    current = make_cp(prompt="Pay *&lt;!channel&gt;*?")
    current = current.model_copy(update={"shown_hash": shown_hash(current)})
    [prompt] = [t for t in mrkdwn_texts(cpb.checkpoint_message(current)["blocks"]) if t.startswith("Pay")]
    assert prompt == "Pay *&lt;!channel&gt;*?", "the author's bold stays; the data was escaped when rendered"
    # opened before prompts escaped their data: the stored prompt may hold raw data, so all of it is escaped
    legacy = make_cp(prompt=f"Pay *{FORGED}*?", shown_hash="0" * 64)
    message = cpb.checkpoint_message(legacy)
    all_mrkdwn_inert(message)
    all_mrkdwn_inert(home_view(waiting=[legacy], requests=[], decided=[]))
    all_mrkdwn_inert(confirm_modal(legacy))
