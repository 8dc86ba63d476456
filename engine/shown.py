"""What a person is shown of a checkpoint: one canonical document that every surface renders.

A decision binds to what the person saw (invariant 20). Every surface that offers a decision
(Slack card, App Home, modals, web console, CLI, email) renders the items of ``shown_document``
verbatim: the title, the prompt, the context fields and, in full, every field that Approve passes
on (the proposal), each with the label the response schema gives it. ``shown_hash`` is the hash
of that document, so the audit can prove which proposal a person approved; the document can be
recomputed from the stored checkpoint at any time.

Values are data, never markup: surfaces show field values as plain text (Slack ``plain_text``,
HTML-escaped text, terminal text without markup), so a value cannot imitate a label, a mention
or a link. Data put into a sentence of Slack markup (a prompt, a notice) goes through
``escape_markup`` first.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.audit import sha256_of
from engine.model import Checkpoint
from engine.sensitive import mask_marked

__all__ = [
    "ShownDocument",
    "ShownField",
    "context_fields",
    "display_text",
    "escape_markup",
    "field_label",
    "humanize",
    "markup_text",
    "proposal_fields",
    "shown_document",
    "shown_hash",
]


class ShownField(BaseModel):
    """One labelled value as every surface shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    label: str
    text: str


class ShownDocument(BaseModel):
    """The canonical content of a checkpoint as shown to a person."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    prompt: str
    context: list[ShownField]
    proposal: list[ShownField]
    options: list[str]


def humanize(name: str) -> str:
    """``due_date`` -> ``Due date``: the label of a field without a schema title."""
    words = name.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def display_text(value: Any) -> str:
    """How a value reads for a person: strings as they are, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def field_label(name: str, schema: dict[str, Any]) -> str:
    """The label of a response field: its schema ``title``, else the humanized name."""
    prop = (schema.get("properties") or {}).get(name)
    if isinstance(prop, dict) and isinstance(prop.get("title"), str) and prop["title"].strip():
        return str(prop["title"]).strip()
    return humanize(name)


def proposal_fields(cp: Checkpoint) -> list[ShownField]:
    """Every field Approve passes on, in full: schema order first, then any other proposed field.

    A field the response schema marks sensitive is shown masked (``engine.sensitive``): the
    person approves it without seeing it, and the step that uses it gets the value.
    """
    properties = list((cp.response_schema.get("properties") or {}).keys())
    order = [k for k in properties if k in cp.proposed] + [k for k in cp.proposed if k not in properties]
    shown = mask_marked(cp.proposed, cp.response_schema)
    return [
        ShownField(field=k, label=field_label(k, cp.response_schema), text=display_text(shown[k]))
        for k in order
    ]


def context_fields(cp: Checkpoint) -> list[ShownField]:
    """The context, highlighted fields first, each with its humanized name as label."""
    first = [f for f in dict.fromkeys(cp.highlight) if f in cp.context]
    order = first + [k for k in cp.context if k not in first]
    return [ShownField(field=k, label=humanize(k), text=display_text(cp.context[k])) for k in order]


def shown_document(cp: Checkpoint) -> ShownDocument:
    """The document every surface renders for ``cp`` (and whose hash a decision records)."""
    return ShownDocument(
        title=cp.title,
        prompt=cp.prompt,
        context=context_fields(cp),
        proposal=proposal_fields(cp),
        options=list(cp.options),
    )


def shown_hash(cp: Checkpoint) -> str:
    """SHA-256 of ``shown_document(cp)``."""
    return sha256_of(shown_document(cp).model_dump(mode="json"))


# Slack markup ("mrkdwn") is the markup of prompts and notices. In data, every character that
# starts formatting, a mention or a link is replaced: entities for & < >, and visibly similar
# full-width forms for the formatting characters, for which Slack has no escape. A newline
# becomes a visible return sign, so data cannot start a line that looks like a label.
_MARKUP = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "*": "\uff0a",
        "_": "\uff3f",
        "~": "\uff5e",
        "`": "\uff40",
        "|": "\uff5c",
        "\r": "",
        "\n": " \u21b5 ",
    }
)


def escape_markup(text: str) -> str:
    """``text`` (data) made inert inside Slack markup: no formatting, mention, link or new line."""
    return text.translate(_MARKUP)


_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}


def markup_text(markup: str) -> str:
    """A Slack-markup text (a prompt, a ``notify`` message) for a surface that is not Slack (the
    console, the CLI), which shows it as text: its entities decoded; data in it stays inert."""
    return re.sub(r"&(?:lt|gt|amp);", lambda m: _ENTITIES[m.group()], markup)
