"""Jinja environment of the console's templates, and its filters (private)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.web._markup import slack_html, slack_plain
from engine.audit import purged_digest
from engine.shown import markup_text

TEMPLATES = Path(__file__).parent / "templates"


def environment() -> Environment:
    """Autoescaped, strict: a missing value is an error, never an empty string."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        pretty=_pretty,
        compact=_compact,
        brief=_brief,
        left=_left,
        took=_took,
        duration=duration,
        short=_short,
        markup_text=markup_text,  # Slack markup as text, entities decoded
        slack_html=slack_html,  # a prompt as Slack shows it: bold, links, code
        slack_plain=slack_plain,  # one line of a list: markers dropped
    )
    return env


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _brief(value: Any) -> str:
    # one line for an audit payload value: lists joined, timestamps in the page's format, a
    # value a retention purge removed said so
    digest = purged_digest(value)
    if digest is not None:
        return f"(removed by the retention policy, sha256 {digest[:12]}…)"
    if isinstance(value, list):
        return ", ".join(v if isinstance(v, str) else _compact(v) for v in value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return _when(moment) if moment.tzinfo is not None else value
    return _compact(value)


def duration(seconds: float | None) -> str:
    """The console's one duration format: 850 ms, 4.2 s, 3m 20s, 2h 5m, 1d 3h ("—" for none).

    ``static/charts.js`` formats chart axes the same way.
    """
    if seconds is None:
        return "—"
    value = abs(seconds)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    whole = int(value)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def _left(due: datetime | None, now: datetime) -> str:
    if due is None:
        return "no deadline"
    delta = (due - now).total_seconds()
    return f"in {duration(delta)}" if delta >= 0 else f"overdue by {duration(delta)}"


def _took(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    return duration((end - start).total_seconds())


def _short(value: str, length: int = 12) -> str:
    return value if len(value) <= length else value[:length] + "…"
