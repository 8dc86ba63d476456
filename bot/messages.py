"""Every user-facing text of the Slack surface, with stable error codes.

Listeners never write prose themselves: they call these functions, so wording changes in one
place and tests can match on ``Notice.code`` instead of on sentences. The texts are Slack
markup: every piece of data in them goes through ``escape`` (``engine.shown.escape_markup``),
mentions through ``mention`` and engine ids through ``ident``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.blocks._kit import MESSAGE_TEXT, clip, ident, mention, principal, utc_time
from engine.model import Checkpoint, Run
from engine.outcome import RunOutcome
from engine.shown import escape_markup as escape

__all__ = [
    "COMMAND",
    "HELP",
    "ErrorCode",
    "Notice",
    "already_decided",
    "bad_delegation",
    "cancelled",
    "checkpoint_not_found",
    "confirm_mismatch",
    "delegation_ended",
    "delegation_set",
    "empty_inbox",
    "internal_error",
    "invalid_input",
    "not_allowed",
    "not_assignee",
    "paused",
    "rerun_started",
    "resumed",
    "retrying",
    "run_finished",
    "run_not_found",
    "run_started",
    "run_state",
    "run_status",
    "self_approval",
    "trigger_expired",
    "unknown_command",
    "unknown_workflow",
    "waiting_list",
    "workflow_list",
]

COMMAND = "/signoff"


class ErrorCode(StrEnum):
    """Stable identifiers of refusals and errors shown to people (safe to log and match on)."""

    NOT_ASSIGNEE = "not_assignee"
    ALREADY_DECIDED = "already_decided"
    SELF_APPROVAL = "self_approval"
    NOT_ALLOWED = "not_allowed"
    CONFIRM_MISMATCH = "confirm_mismatch"
    UNKNOWN_WORKFLOW = "unknown_workflow"
    UNKNOWN_COMMAND = "unknown_command"
    RUN_NOT_FOUND = "run_not_found"
    RUN_FINISHED = "run_finished"
    RUN_STATE = "run_state"
    CHECKPOINT_NOT_FOUND = "checkpoint_not_found"
    INVALID_INPUT = "invalid_input"
    BAD_DELEGATION = "bad_delegation"
    TRIGGER_EXPIRED = "trigger_expired"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Notice:
    """A text for a person, and the code that says which refusal it is (None for good news)."""

    text: str
    code: ErrorCode | None = None


HELP = f"""*Signoff* runs workflows that stop for a person's decision.

`{COMMAND} run <workflow> key=value …` start a run (missing inputs are asked in a form)
`{COMMAND} list` list the workflows you can run
`{COMMAND} status <run>` show where a run is
`{COMMAND} inbox` list what is waiting for you
`{COMMAND} cancel <run>` cancel a run you started
`{COMMAND} pause <run>` stop a run you started before its next step (it still takes decisions)
`{COMMAND} resume <run>` let a paused run continue
`{COMMAND} delegate @user until YYYY-MM-DD` let someone decide for you while you are away
`{COMMAND} delegate off` end your delegation now
`{COMMAND} help` show this help

Quote values with spaces: `title="Deploy api v2.3"`."""
"""The ``/signoff help`` text (also shown after an unknown command)."""


def not_assignee(assignees: list[str]) -> Notice:
    """A click by someone who may not decide this checkpoint."""
    who = ", ".join(principal(a) for a in assignees[:10]) or "the assignees"
    return Notice(f"Only {who} can decide this. Nothing was changed.", ErrorCode.NOT_ASSIGNEE)


_PAST = {
    "approve": "approved",
    "approved": "approved",
    "reject": "rejected",
    "rejected": "rejected",
    "edit": "edited",
    "edited": "edited",
    "answer": "answered",
    "answered": "answered",
    "timed_out": "timed out",
    "cancelled": "cancelled",
}


def already_decided(outcome: str, actor: str, at: datetime, *, by_policy: bool = False) -> Notice:
    """A click on a checkpoint that is already resolved: ``Already approved by <@U1> at 10:32 UTC``."""
    verb = _PAST.get(outcome, "decided")
    who = f"by policy ({ident(actor)})" if by_policy else f"by {mention(actor)}"
    return Notice(f"Already {verb} {who} at {utc_time(at)}.", ErrorCode.ALREADY_DECIDED)


def self_approval() -> Notice:
    """The requester tried to approve their own request."""
    return Notice("You cannot approve your own request. Someone else has to decide.", ErrorCode.SELF_APPROVAL)


def not_allowed(reason: str) -> Notice:
    """Any other refusal, with the engine's reason."""
    return Notice(clip(f"Not allowed: {escape(reason)}", MESSAGE_TEXT), ErrorCode.NOT_ALLOWED)


def confirm_mismatch(word: str) -> str:
    """The inline error of the confirm modal (keyed by its block id)."""
    return f"Type {word} exactly to confirm"


def unknown_workflow(name: str, known: list[str]) -> Notice:
    """``/signoff run <name>`` for a workflow that does not exist, with close matches."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    text = f"There is no workflow `{escape(name)}`."
    if close:
        text += " Did you mean " + " or ".join(f"`{escape(c)}`" for c in close) + "?"
    else:
        text += f" `{COMMAND} list` shows the workflows you can run."
    return Notice(text, ErrorCode.UNKNOWN_WORKFLOW)


def unknown_command(command: str) -> Notice:
    """An unknown subcommand, followed by the help."""
    return Notice(
        clip(f"I don't know `{escape(command)}`.\n\n{HELP}", MESSAGE_TEXT), ErrorCode.UNKNOWN_COMMAND
    )


def run_not_found(run_id: str) -> Notice:
    """``status``/``cancel`` of a run that does not exist (or that the user may not see)."""
    return Notice(f"There is no run `{ident(run_id)}`.", ErrorCode.RUN_NOT_FOUND)


def run_finished(run_id: str, status: str) -> Notice:
    """``cancel`` of a run that has already ended."""
    return Notice(f"Run `{ident(run_id)}` has already ended ({escape(status)}).", ErrorCode.RUN_FINISHED)


def checkpoint_not_found() -> Notice:
    """A button on a card whose checkpoint no longer exists."""
    return Notice("This request no longer exists.", ErrorCode.CHECKPOINT_NOT_FOUND)


def invalid_input(errors: dict[str, str]) -> Notice:
    """Field errors that cannot be shown inline (e.g. from the command line)."""
    lines = [f"• *{escape(k)}*: {escape(v)}" if k else f"• {escape(v)}" for k, v in errors.items()]
    return Notice(
        clip("Some inputs are not valid:\n" + "\n".join(lines), MESSAGE_TEXT), ErrorCode.INVALID_INPUT
    )


def bad_delegation() -> Notice:
    """A ``delegate`` command that cannot be understood."""
    return Notice(
        f"Use `{COMMAND} delegate @user until YYYY-MM-DD`, or `{COMMAND} delegate off`.",
        ErrorCode.BAD_DELEGATION,
    )


def trigger_expired() -> Notice:
    """Slack refused to open a form because the click is more than 3 seconds old."""
    return Notice("That took too long to open. Please click the button again.", ErrorCode.TRIGGER_EXPIRED)


def internal_error(run_id: str | None = None) -> Notice:
    """Something failed on our side; the run id helps whoever looks at the logs."""
    suffix = f" (run `{ident(run_id)}`)" if run_id else ""
    return Notice(f"Something went wrong on our side{suffix}. Please try again.", ErrorCode.INTERNAL)


def run_started(workflow_title: str, run_id: str) -> Notice:
    """The answer to a successful ``run``."""
    return Notice(f"Started *{escape(workflow_title)}* (run `{ident(run_id)}`).")


def cancelled(run_id: str) -> Notice:
    """The answer to a successful ``cancel``."""
    return Notice(f"Cancelled run `{ident(run_id)}`.")


def paused(run_id: str) -> Notice:
    """The answer to a successful ``pause``."""
    return Notice(
        f"Paused run `{ident(run_id)}`: it starts no step until `{COMMAND} resume {ident(run_id)}`."
    )


def resumed(run_id: str) -> Notice:
    """The answer to a successful ``resume``."""
    return Notice(f"Resumed run `{ident(run_id)}`.")


def rerun_started(run_id: str, new_id: str, start: str) -> Notice:
    """The answer to Retry: the new run, and the node it starts again from."""
    return Notice(
        f"Retrying run `{ident(run_id)}` as `{ident(new_id)}` from step `{ident(start)}`;"
        " earlier steps and decisions are reused."
    )


def retrying(run_id: str, nodes: list[str]) -> Notice:
    """The answer to Retry when the failed steps run again in the same run."""
    steps = ", ".join(f"`{ident(n)}`" for n in nodes)
    return Notice(f"Retrying {steps} in run `{ident(run_id)}`; earlier steps and decisions stand.")


def run_state(reason: str) -> Notice:
    """``pause`` of a paused run, ``resume`` of a running one: the engine's reason."""
    return Notice(clip(escape(reason), MESSAGE_TEXT), ErrorCode.RUN_STATE)


def delegation_set(delegate: str, until: str) -> Notice:
    """The answer to a successful ``delegate``."""
    return Notice(f"{mention(delegate)} can decide for you until {escape(until)}.")


def delegation_ended(delegates: list[str]) -> Notice:
    """The answer to ``delegate off``."""
    if not delegates:
        return Notice("You have no active delegation.")
    who = ", ".join(mention(d) for d in delegates)
    return Notice(f"{who} no longer decide(s) for you.")


def empty_inbox() -> Notice:
    """``inbox`` with nothing waiting."""
    return Notice("Nothing is waiting for you. :tada:")


def workflow_list(workflows: list[tuple[str, str]]) -> Notice:
    """``list``: ``(id, title)`` pairs, cut to fit one message."""
    if not workflows:
        return Notice("No workflows are available yet.")
    lines = [f"• `{ident(wid)}` {escape(title)}" for wid, title in workflows]
    return Notice(clip("Workflows you can run:\n" + "\n".join(lines), MESSAGE_TEXT))


def run_status(run: Run, open_checkpoints: list[Checkpoint], outcome: RunOutcome | None = None) -> Notice:
    """``status``: where a run is, what its checkpoints decided, and who it waits for."""
    text = f"Run `{ident(run.id)}` ({escape(run.workflow_id)}): *{run.status.value}*"
    text += f", outcome *{outcome.value.replace('_', ' ')}*" if outcome else ""
    text += f" — {escape(run.reason)}" if run.reason else ""
    if run.paused_at is not None and not run.status.final:
        text += f"\npaused by {mention(run.paused_by or '')}: `{COMMAND} resume {ident(run.id)}`"
    for cp in open_checkpoints:
        who = ", ".join(principal(a) for a in cp.assignees) or "someone"
        text += f"\n• waiting for {who}: {escape(cp.title)}"
    return Notice(clip(text, MESSAGE_TEXT))


def waiting_list(waiting: list[Checkpoint]) -> Notice:
    """``inbox``: what waits for the person (deciding happens on the Home tab or the cards)."""
    lines = [f"• *{escape(cp.title)}* (run `{ident(cp.run_id)}`, {cp.priority.value})" for cp in waiting[:20]]
    text = "Waiting for you (open the Signoff Home tab to decide):\n" + "\n".join(lines)
    return Notice(clip(text, MESSAGE_TEXT))
