"""Slack markup ("mrkdwn") as the console shows it (private): bold, italic, strike, code, links.

A prompt is Slack markup, written by the workflow's author; the data a template puts in it was
made inert by ``engine.shown.escape_markup`` (entities for ``& < >``, look-alike characters for
``* _ ~ ` |``), so only the author's markup is formatted here, as Slack formats it.

Safety comes from the order: the links, mentions and code spans are taken out first, the rest
is HTML-escaped, the formatting characters are then turned into tags (they cannot make
attributes or tags: the text is escaped), and the pieces taken out are put back, each built
from escaped parts. A link is made only for ``http``, ``https`` and ``mailto`` addresses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape

from markupsafe import Markup

from engine.shown import markup_text

__all__ = ["slack_html", "slack_plain"]

_HOLE = "\ue000"  # a private-use character marks where a piece taken out goes back
_HOLES = re.compile(_HOLE + r"(\d+)" + _HOLE)
_PRIVATE = re.compile("[\ue000-\uf8ff]")
_CODE_BLOCK = re.compile(r"```(.+?)```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
_ANGLE = re.compile(r"<([^<>\n]+)>")
_SCHEMES = ("http://", "https://", "mailto:")
# Slack formats a span only at word boundaries, without a space just inside the markers
_SPANS = [
    (re.compile(rf"(?<![\w{m}])[{m}](?=\S)([^{m}\n]*?\S)[{m}](?![\w{m}])"), tag)
    for m, tag in (("*", "strong"), ("_", "em"), ("~", "del"))
]


def _special(inner: str) -> tuple[str, str]:
    """A ``<...>`` construct as (HTML, plain text): a link, a mention, or the text as written."""
    target, _, label = inner.partition("|")
    if target.startswith(_SCHEMES):
        text = markup_text(label or target)
        href = escape(markup_text(target), quote=True)
        return f'<a href="{href}" rel="noopener noreferrer">{escape(text)}</a>', text
    if target.startswith("!date^"):  # a date Slack shows in the reader's zone; here its fallback
        text = markup_text(label or target)
        return escape(text), text
    mention = {"@": "@", "#": "#", "!": "@"}.get(target[:1])
    if mention is not None:
        name = label or target[1:].split("^", 1)[-1]
        text = markup_text(name if name.startswith(("@", "#")) else mention + name)
        return f'<span class="mention">{escape(text)}</span>', text
    text = markup_text(f"<{inner}>")
    return escape(text), text


def _take(
    pattern: re.Pattern[str], text: str, pieces: list[str], build: Callable[[re.Match[str]], str]
) -> str:
    def hole(match: re.Match[str]) -> str:
        pieces.append(build(match))
        return f"{_HOLE}{len(pieces) - 1}{_HOLE}"

    return pattern.sub(hole, text)


def slack_html(markup: str) -> Markup:
    """Slack markup as safe HTML: ``*bold*``, ``_italic_``, ``~strike~``, code, links, mentions."""
    pieces: list[str] = []
    text = _PRIVATE.sub("", markup)
    text = _take(
        _CODE_BLOCK, text, pieces, lambda m: f"<pre>{escape(markup_text(m.group(1)).strip(chr(10)))}</pre>"
    )
    text = _take(_CODE, text, pieces, lambda m: f"<code>{escape(markup_text(m.group(1)))}</code>")
    text = _take(_ANGLE, text, pieces, lambda m: _special(m.group(1))[0])
    html = escape(markup_text(text), quote=True)
    for pattern, tag in _SPANS:
        html = pattern.sub(rf"<{tag}>\1</{tag}>", html)
    # every piece was escaped above, and the tags added are fixed strings
    return Markup(_HOLES.sub(lambda m: pieces[int(m.group(1))], html))  # noqa: S704


def slack_plain(markup: str) -> str:
    """Slack markup as one plain text (for a line in a list): markers dropped, link labels kept."""
    pieces: list[str] = []
    text = _PRIVATE.sub("", markup)
    text = _take(_CODE_BLOCK, text, pieces, lambda m: markup_text(m.group(1)).strip("\n"))
    text = _take(_CODE, text, pieces, lambda m: markup_text(m.group(1)))
    text = _take(_ANGLE, text, pieces, lambda m: _special(m.group(1))[1])
    text = markup_text(text)
    for pattern, _tag in _SPANS:
        text = pattern.sub(r"\1", text)
    return _HOLES.sub(lambda m: pieces[int(m.group(1))], text)
