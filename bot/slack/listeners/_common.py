"""Helpers every listener uses: who acted, where to answer, engine refusals as notices (private)."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import messages
from bot.slack._errors import slack_error
from bot.slack.deps import SlackDeps
from engine.audit import sha256_of
from engine.errors import Conflict, NotAllowed
from engine.model import Checkpoint
from engine.shown import escape_markup

log = logging.getLogger("signoff.slack")

Body = dict[str, Any]
TRIGGER_ERRORS = {
    "expired_trigger_id",
    "exchanged_trigger_id",
    "invalid_trigger_id",
    "trigger_expired",
    "trigger_exchanged",
}


def user_of(body: Body) -> str:
    """The Slack user id from the signed payload (never from a button value)."""
    user = body.get("user")
    if isinstance(user, dict):
        return str(user.get("id", ""))
    return str(body.get("user_id") or user or "")


def team_of(body: Body) -> str | None:
    """The Slack workspace of the signed payload (the gate refuses another one than ours)."""
    team = body.get("team")
    if isinstance(team, dict) and team.get("id"):
        return str(team["id"])
    user = body.get("user")
    if isinstance(user, dict) and user.get("team_id"):
        return str(user["team_id"])
    return str(body.get("team_id")) if body.get("team_id") else None


def seen_hash(body: Body) -> str | None:
    """SHA-256 of exactly what the person acted on, as Slack sent it back with the action:
    the form's blocks for a modal submission, the message's blocks for a button on a message."""
    view = body.get("view")
    if isinstance(view, dict) and view.get("blocks"):
        return sha256_of(view["blocks"])
    message = body.get("message")
    if isinstance(message, dict) and message.get("blocks"):
        return sha256_of({"text": message.get("text"), "blocks": message["blocks"]})
    return None


def where(body: Body) -> dict[str, Any]:
    """Where an ephemeral answer to this request can go: its response_url, or its channel."""
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id") or body.get("channel_id")
    url = body.get("response_url")
    return {"response_url": url, "channel": channel}


def refusal(cp: Checkpoint | None, exc: NotAllowed | Conflict) -> messages.Notice:
    """The notice for an engine refusal of a decision."""
    if isinstance(exc, Conflict):
        if exc.at is None:
            return messages.not_allowed(str(exc))
        by_policy = "by policy" in str(exc)
        actor = exc.winner or "someone"
        return messages.already_decided(exc.action or "decided", actor, exc.at, by_policy=by_policy)
    text = str(exc)
    if text.startswith("you started this run"):
        return messages.self_approval()
    if text.startswith("only the assignees") and cp is not None:
        return messages.not_assignee(cp.assignees)
    return messages.not_allowed(text)


async def open_view(deps: SlackDeps, body: Body, view: dict[str, Any], *, fallback: dict[str, Any]) -> bool:
    """``views.open`` with this request's trigger id; when Slack refuses the trigger, queue a fallback.

    The trigger is valid for 3 s only, so this call cannot wait for the outbox. When it has
    expired, the person gets a DM with an "Open form" button (``fallback``: its text and
    blocks) and the miss is recorded as an audit event.

    Returns:
        True when the modal opened.
    """
    user = user_of(body)
    try:
        await (await deps.web()).views_open(trigger_id=str(body.get("trigger_id", "")), view=view)
        return True
    except SlackApiError as exc:
        error = slack_error(exc)
        if error not in TRIGGER_ERRORS:
            log.warning("views.open failed for %s: %s", user, error)
        audit = deps.audit(
            "slack.trigger_failed",
            user,
            {"error": error, "callback_id": view.get("callback_id", "")},
            run_id=fallback.get("run_id"),
            checkpoint_id=fallback.get("checkpoint_id"),
        )
        row = deps.row(
            "slack.reply",
            user,
            {"text": fallback["text"], "blocks": fallback["blocks"]},
            fallback.get("run_id"),
        )
        await deps.queue([row], [audit])
        return False


OPEN_FORM = "slack.open_form"
"""Action id of the "Open form" button sent when a modal could not be opened."""


def form_fallback(form: str, ref: str, title: str, **ids: str | None) -> dict[str, Any]:
    """The DM sent instead of a modal: a line of text and an "Open form" button (ids only)."""
    text = f"Slack could not open the form for *{escape_markup(title)}* in time. Click to open it again."
    blocks = [
        {"type": "section", "block_id": "open_form_text", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": "open_form",
            "elements": [
                {
                    "type": "button",
                    "action_id": OPEN_FORM,
                    "text": {"type": "plain_text", "text": "Open form"},
                    "value": f"{form}:{ref}",
                    "style": "primary",
                }
            ],
        },
    ]
    return {"text": text, "blocks": blocks, **ids}
