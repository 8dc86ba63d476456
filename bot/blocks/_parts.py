"""Pieces shared by the checkpoint message and the App Home (private)."""

from __future__ import annotations

from datetime import datetime

from bot.blocks._kit import (
    Block,
    as_utc,
    button,
    duration,
    ident,
    mention,
    utc_time,
)
from engine.model import Checkpoint, Decision, Priority, ResolvedBy
from engine.shown import escape_markup, humanize, shown_hash

APPROVE = "checkpoint.approve"
REJECT = "checkpoint.reject"
EDIT = "checkpoint.edit"
OPTION = "checkpoint.option"
ANSWER = "checkpoint.answer"
SHOW_FULL = "checkpoint.show_full"
OPEN_WEB = "checkpoint.open_web"
REOPEN = "checkpoint.reopen"
REVIEW = "checkpoint.review"

PROMPT_FIELD = "_prompt"
ALL_FIELDS = "*"

_BUILT_IN = ("approve", "reject", "edit")
_MARKERS = {Priority.urgent: ":rotating_light: Urgent · ", Priority.high: ":warning: High · "}
_RANK = {Priority.urgent: 0, Priority.high: 1, Priority.medium: 2, Priority.low: 3}


def block_id(part: str, cp: Checkpoint) -> str:
    """``part:v<version>:<checkpoint id>``: a new version gives new block ids on update."""
    return f"{part}:v{cp.version}:{cp.id}"


def parse_block_id(value: str) -> tuple[str, int] | None:
    """``(checkpoint id, version)`` from a block id made by ``block_id``, else None."""
    parts = value.split(":", 2)
    if len(parts) != 3 or not parts[1].startswith("v") or not parts[1][1:].isdigit():
        return None
    return parts[2], int(parts[1][1:])


def prompt_markup(cp: Checkpoint) -> str:
    """The prompt as Slack markup: the author's markup, its data made inert when it was rendered.

    A checkpoint opened before prompts were rendered that way (its stored ``shown_hash`` is not
    the hash of what is shown now) may hold raw data in its prompt: that prompt is escaped whole.
    """
    if not cp.prompt or cp.shown_hash == shown_hash(cp):
        return cp.prompt
    return escape_markup(cp.prompt)


def rank(priority: Priority) -> int:
    """Sort key: urgent first, low last."""
    return _RANK.get(priority, 2)


def title_text(cp: Checkpoint, workflow_title: str = "") -> str:
    """The header line: priority marker for high/urgent, then the checkpoint title."""
    title = cp.title or workflow_title or ("Input needed" if cp.kind == "input" else "Approval needed")
    return _MARKERS.get(cp.priority, "") + title


def title_markup(cp: Checkpoint, workflow_title: str = "", *, bold: bool = False) -> str:
    """``title_text`` as Slack markup: the priority marker is ours, the title is data (escaped)."""
    title = escape_markup(
        cp.title or workflow_title or ("Input needed" if cp.kind == "input" else "Approval needed")
    )
    return _MARKERS.get(cp.priority, "") + (f"*{title}*" if bold else title)


def due_text(due_at: datetime, now: datetime | None) -> str:
    """``Due in 2h 5m (10:32 UTC)``; Slack's date token shows local time to each reader."""
    at = as_utc(due_at)
    stamp = f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d} {utc_time(at)}>"
    if now is None:
        return f":alarm_clock: Due {stamp}"
    left = (at - as_utc(now)).total_seconds()
    if left < 0:
        return f":alarm_clock: *Overdue* by {duration(left)} (was due {stamp})"
    return f":alarm_clock: Due in *{duration(left)}* ({stamp})"


def quorum_text(cp: Checkpoint) -> str:
    """``1 of 2 approvals, waiting for 1 more · approved by <@U1>``."""
    got = len(cp.approvals)
    text = f":busts_in_silhouette: {got} of {cp.quorum} approvals"
    if got < cp.quorum:
        text += f", waiting for {cp.quorum - got} more"
    if cp.approvals:
        text += " · approved by " + ", ".join(mention(u) for u in cp.approvals)
    return text


def option_buttons(cp: Checkpoint, *, review: bool = False) -> list[Block]:
    """Approve / Reject / Edit / custom options / Answer; values carry the checkpoint id only.

    With ``review`` (the proposal is not shown in full next to the buttons), Approve and the
    custom options, which pass the proposal on, give way to one "Review and approve…" button
    that opens the whole proposal.
    """
    elements: list[Block] = []
    custom = [o for o in cp.options if o not in _BUILT_IN]
    approve = "approve" in cp.options and cp.kind != "input"
    if cp.kind == "input":
        elements.append(button("Answer", ANSWER, value=cp.id, style="primary"))
    if review and (approve or custom):
        style = "primary" if cp.kind != "input" else None
        elements.append(button("Review and approve…", REVIEW, value=cp.id, style=style))
        custom = []
    elif approve:
        elements.append(button("Approve", APPROVE, value=cp.id, style="primary"))
    if "reject" in cp.options:
        elements.append(button("Reject", REJECT, value=cp.id, style="danger"))
    if "edit" in cp.options and cp.kind != "input":
        elements.append(button("Edit…", EDIT, value=cp.id))
    for n, option in enumerate(custom):
        # action ids must be unique within a block: options after the first get a suffix
        elements.append(button(humanize(option), f"{OPTION}:{n}" if n else OPTION, value=f"{cp.id}|{option}"))
    return elements


_VERBS = {
    "approve": "Approved",
    "approved": "Approved",
    "reject": "Rejected",
    "rejected": "Rejected",
    "edit": "Edited",
    "edited": "Edited",
    "answer": "Answered",
    "answered": "Answered",
    "cancel": "Cancelled",
    "cancelled": "Cancelled",
}
_POLICY_ACTIONS = {"auto_approve": "Approved", "auto_reject": "Rejected"}


def decision_line(decision: Decision) -> str:
    """Who decided what and when, never crediting a person for a timeout or policy decision."""
    action = decision.action.removeprefix("option:")
    at = utc_time(decision.created_at)
    rule = decision.rule or (f"auto_{action}" if action in ("approve", "reject") else action)
    if decision.resolved_by is ResolvedBy.timeout:
        return f":hourglass: Timed out — resolved by policy ({ident(rule)}) at {at}"
    if decision.resolved_by is ResolvedBy.policy:
        verb = _POLICY_ACTIONS.get(action) or _VERBS.get(action) or f"Resolved ({escape_markup(action)})"
        return f":robot_face: {verb} by policy ({ident(rule)}) at {at}"
    verb = _VERBS.get(action) or f"Chose “{escape_markup(humanize(action))}”"
    return f"{_ICON.get(verb, ':ballot_box_with_check:')} {verb} by {mention(decision.actor)} at {at}"


_ICON = {
    "Approved": ":white_check_mark:",
    "Rejected": ":x:",
    "Edited": ":pencil2:",
    "Cancelled": ":no_entry:",
}
