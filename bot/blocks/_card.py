"""The parts of a checkpoint card (private): prompt, context, proposal, meta, decided parts.

Labels are product markup; values are plain text (``bot.blocks._proposal``); the prompt is the
author's markup whose data was made inert when it was rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.blocks import _parts
from bot.blocks._kit import (
    FIELD_TEXT,
    MESSAGE_TEXT,
    SECTION_TEXT,
    Block,
    actions,
    button,
    clip,
    context,
    ident,
    mention,
    section,
)
from bot.blocks._parts import ALL_FIELDS, PROMPT_FIELD, SHOW_FULL
from bot.blocks._proposal import CARD_FIELDS, cut_note, pair_sections
from engine.model import Checkpoint, Decision, Run
from engine.shown import ShownField, context_fields, display_text, escape_markup, humanize, proposal_fields

_HIGHLIGHTS = 5
_HIGHLIGHT_PREVIEW = 1900
_FIELD_PREVIEW = 300
_CONTEXT_FIELDS = 20
_SHOW_BUTTONS = 4


def _show(cp: Checkpoint, field: str, text: str = "Show full", n: int = 0) -> Block:
    # action ids must be unique within a block: the n-th button gets its own suffix
    return button(text, f"{SHOW_FULL}:{n}" if n else SHOW_FULL, value=f"{cp.id}:{field}")


def prompt_blocks(cp: Checkpoint, interactive: bool) -> list[Block]:
    if not cp.prompt:
        return []
    # the prompt is the author's Slack markup; the data it interpolates was made inert when it
    # was rendered (engine.templates.render_markup)
    prompt = _parts.prompt_markup(cp)
    cut = len(prompt) > SECTION_TEXT
    accessory = _show(cp, PROMPT_FIELD) if cut and interactive else None
    return [section(prompt, _parts.block_id("prompt", cp), accessory=accessory)]


def context_blocks(cp: Checkpoint, interactive: bool) -> list[Block]:
    """Highlighted fields first (a section each), then the rest as label/value pairs; values are
    previews in plain text, the whole value one click away."""
    fields = context_fields(cp)
    marked = set(cp.highlight)
    highlighted = [f for f in fields if f.field in marked][:_HIGHLIGHTS]
    rest = [f for f in fields if f not in highlighted]
    blocks: list[Block] = []
    for n, field in enumerate(highlighted):
        star = field.model_copy(update={"label": f":star: {field.label}"})
        [block], cut = pair_sections(
            [star], _fixed(_parts.block_id(f"hl{n}", cp)), preview=_HIGHLIGHT_PREVIEW
        )
        if cut and interactive:
            block["accessory"] = _show(cp, field.field)
        blocks.append(block)
    shown = rest[:_CONTEXT_FIELDS]
    pairs, hidden = pair_sections(shown, lambda n: _parts.block_id(f"ctx{n}", cp), preview=_FIELD_PREVIEW)
    blocks += pairs
    more = len(rest) - len(shown)
    if more > 0:
        blocks.append(context([f"+{more} more fields not shown here"], _parts.block_id("more", cp)))
    if interactive and (hidden or more > 0):
        buttons = [_show(cp, f, f"Show {humanize(f)}", n) for n, f in enumerate(hidden[:_SHOW_BUTTONS])]
        if more > 0 or len(hidden) > _SHOW_BUTTONS:
            buttons.append(_show(cp, ALL_FIELDS, "Show all details", len(buttons)))
        blocks.append(actions(buttons, _parts.block_id("show", cp)))
    return blocks


def _fixed(block_id: str) -> Callable[[int], str]:
    return lambda _: block_id


def _heading(cp: Checkpoint, in_full: bool) -> str:
    what = "*Proposed answer*" if cp.kind == "input" else "*Approve passes on*"
    if in_full:
        return f"{what}:"
    return f"{what} (values cut here: *Review and approve…* shows every one in full):"


def proposal_blocks(cp: Checkpoint, fields: list[ShownField], in_full: bool) -> list[Block]:
    """Every field Approve passes on, labelled; in full, or previews next to "Review and approve…"."""
    if not fields:
        return []
    shown = fields[:CARD_FIELDS]
    preview = FIELD_TEXT if in_full else _FIELD_PREVIEW
    blocks, _ = pair_sections(
        shown, lambda n: _parts.block_id(f"prop{n}", cp), heading=_heading(cp, in_full), preview=preview
    )
    if len(fields) > len(shown):
        note = f"+{len(fields) - len(shown)} more proposed fields: *Review and approve…* shows them."
        blocks.append(context([note], _parts.block_id("propmore", cp)))
    return blocks


def meta_blocks(
    cp: Checkpoint,
    run: Run | None,
    workflow_title: str,
    delegated_from: dict[str, str] | None,
    now: datetime | None,
) -> list[Block]:
    lines: list[str] = []
    if workflow_title or run is not None:
        run_part = f" · run `{ident(run.id)}`" if run is not None else ""
        title = workflow_title or (run.workflow_id if run else "")
        lines.append(f"*Workflow:* {escape_markup(title)}{run_part}")
    requester = cp.requester or (run.requester if run is not None else "")
    if requester:
        lines.append(f"Requested by {mention(requester)}")
    lines.extend(f"{mention(d)} on behalf of {mention(o)}" for d, o in (delegated_from or {}).items())
    if cp.due_at is not None:
        lines.append(_parts.due_text(cp.due_at, now))
    if cp.quorum > 1:
        lines.append(_parts.quorum_text(cp))
    return [context(lines, _parts.block_id("meta", cp))] if lines else []


def fallback(cp: Checkpoint, workflow_title: str, prefix: str = "") -> str:
    # the notification text: the title is data, the prompt is markup whose data is already inert
    title = _parts.title_markup(cp, workflow_title)
    prompt = _parts.prompt_markup(cp)
    return clip(f"{prefix}{title}: {prompt}" if prompt else f"{prefix}{title}", MESSAGE_TEXT)


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = []
    for field in dict.fromkeys([*before, *after]):
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        old_text = clip(escape_markup(display_text(old)), 400) if field in before else "(none)"
        new_text = clip(escape_markup(display_text(new)), 400) if field in after else "(removed)"
        lines.append(f"*{escape_markup(humanize(field))}:* ~{old_text}~ → {new_text}")
    return lines


def diff_blocks(cp: Checkpoint, decision: Decision, before: dict[str, Any] | None) -> list[Block]:
    if before is not None:
        lines = _diff(before, decision.data)
    else:
        pairs = {
            k: v for k, v in decision.diff.items() if isinstance(v, dict) and {"before", "after"} <= v.keys()
        }
        lines = _diff({k: v["before"] for k, v in pairs.items()}, {k: v["after"] for k, v in pairs.items()})
    if not lines:
        return []
    return [section(clip("*Changes*\n" + "\n".join(lines), SECTION_TEXT), _parts.block_id("diff", cp))]


def passed_on_blocks(cp: Checkpoint, decision: Decision) -> list[Block]:
    """What the decision passed on (for a reject or a close: what was proposed), labelled."""
    passed = bool(decision.data) and decision.action != "reject"
    fields = proposal_fields(cp.model_copy(update={"proposed": decision.data}) if passed else cp)
    if not fields:
        return []
    shown = fields[:CARD_FIELDS]
    heading = "*Passed on:*" if passed else "*Proposed:*"
    blocks, _ = pair_sections(shown, lambda n: _parts.block_id(f"prop{n}", cp), heading=heading)
    notes = [n for n in [cut_note(fields)] if n]
    if len(fields) > len(shown):
        notes.append(f"+{len(fields) - len(shown)} more fields: `signoff show` lists them.")
    if notes:
        blocks.append(context(notes, _parts.block_id("propmore", cp)))
    return blocks
