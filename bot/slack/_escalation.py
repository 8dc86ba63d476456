"""Texts that explain why a checkpoint message arrives again: escalation, retry, queue, reminder."""

from __future__ import annotations

from typing import Any

from bot.blocks._kit import principal
from engine.shown import escape_markup

__all__ = ["escalation_note", "principal_label", "reminder_text", "span"]


def span(seconds: float | int | None) -> str:
    """``4h 5m``, ``12m``, ``40s``."""
    if seconds is None:
        return "some time"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    text = " ".join(p for p in parts if p)
    return text or f"{secs}s"


def principal_label(ref: str) -> str:
    """How a principal reads in Slack mrkdwn (a mention only for a well-formed Slack id)."""
    return principal(ref)


def escalation_note(payload: dict[str, Any]) -> str | None:
    """The line above a checkpoint message that was escalated, re-sent or queued."""
    action = payload.get("escalation")
    if not action:
        return None
    waited = span(payload.get("waited_s"))
    before = ", ".join(principal_label(p) for p in payload.get("from", [])) or "the assignees"
    if action == "escalate":
        return f":arrow_double_up: *Escalated to you:* {before} had this for {waited} without a decision."
    if action == "retry":
        return f":repeat: *Still waiting* after {waited} (reminder {payload.get('attempt', 1)})."
    if action == "queue":
        return (
            f":inbox_tray: *Moved to the shared queue* after {waited} with {before}: anyone here may take it."
        )
    return None


def reminder_text(title: str, left_s: float | int | None) -> str:
    """A reminder DM."""
    left = f" — {span(left_s)} left before it escalates or times out" if left_s is not None else ""
    return f":alarm_clock: Reminder: *{escape_markup(title)}* is waiting for your decision{left}."
