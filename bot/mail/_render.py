"""Checkpoint mail (private): plain text and HTML from sandboxed Jinja2 templates.

Both parts render ``engine.shown.shown_document``: the title, the prompt, the context and every
field Approve would pass on, in full, each with its schema label, sensitive values masked, the
same document as the Slack card and the console. HTML is autoescaped; in the text part a value
that spans lines is indented, so it cannot start a line that looks like a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from engine.model import Checkpoint, Decision
from engine.shown import markup_text, shown_document

__all__ = ["Mail", "checkpoint_mail", "decided_mail", "notice_mail"]

_TEMPLATES = Path(__file__).parent / "templates"
_SUBJECT_MAX = 150


def _env(*, html: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html"]) if html else False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["block"] = _block
    env.filters["markup_text"] = markup_text
    return env


@dataclass(frozen=True)
class Mail:
    """One message: its subject and both parts."""

    subject: str
    text: str
    html: str


def _block(value: str) -> str:
    """A value in the text part: continuation lines indented, so data never starts a line."""
    return "\n      ".join(value.replace("\r", "").split("\n"))


_HTML = _env(html=True)
_TEXT = _env(html=False)


def subject_line(text: str) -> str:
    """One header line: no line breaks, bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _SUBJECT_MAX else flat[: _SUBJECT_MAX - 1] + "…"


def _render(name: str, values: dict[str, Any]) -> tuple[str, str]:
    return _TEXT.get_template(f"{name}.txt").render(**values), _HTML.get_template(f"{name}.html").render(
        **values
    )


_HEADINGS = {
    "new": "A decision is waiting for you",
    "reminder": "Reminder: a decision is still waiting for you",
    "escalated": "Escalated to you: a decision is waiting",
}


def checkpoint_mail(
    cp: Checkpoint,
    *,
    link: str | None,
    console_url: str,
    reason: str = "new",
    note: str | None = None,
    code: str | None = None,
) -> Mail:
    """The mail that asks a person to decide ``cp`` (``reason``: new, reminder or escalated);
    without a ``link``, the mail of a watcher, who is told and cannot decide."""
    heading = (
        _HEADINGS.get(reason, _HEADINGS["new"]) if link else "For your information: a request is waiting"
    )
    doc = shown_document(cp)
    values = {
        "heading": heading,
        "doc": doc,
        "cp": cp,
        "link": link,
        "console_url": console_url,
        "note": note,
        "code": code,
        "due": cp.due_at.strftime("%Y-%m-%d %H:%M UTC") if cp.due_at else None,
    }
    text, html = _render("checkpoint", values)
    prefix = {"reminder": "Reminder: ", "escalated": "Escalated: "}.get(reason, "")
    return Mail(subject=subject_line(f"{prefix}{doc.title}"), text=text, html=html)


def decided_mail(cp: Checkpoint, decisions: list[Decision], console_url: str) -> Mail:
    """The notice that ``cp`` no longer waits for anyone: how it ended, and by whom."""
    outcome = cp.outcome.value if cp.outcome is not None else "closed"
    people = [d.actor for d in decisions if d.resolved_by == "human"]
    values = {
        "doc": shown_document(cp),
        "outcome": outcome,
        "people": people,
        "by_policy": next((d.rule or d.resolved_by for d in decisions if d.resolved_by != "human"), None),
        "console_url": console_url,
    }
    text, html = _render("decided", values)
    return Mail(subject=subject_line(f"{outcome.capitalize()}: {cp.title}"), text=text, html=html)


def notice_mail(text: str, detail: str | None, run_url: str | None) -> Mail:
    """A notice (a run's requester told how it went, a ``notify`` node's message) as mail; the
    text is the engine's Slack markup, shown as text with its data inert."""
    plain = markup_text(text)
    first = plain.strip().splitlines()[0] if plain.strip() else "A message from Signoff"
    values = {"text": plain, "detail": markup_text(detail) if detail else None, "run_url": run_url}
    body, html = _render("notice", values)
    return Mail(subject=subject_line(first.replace("*", "")), text=body, html=html)
