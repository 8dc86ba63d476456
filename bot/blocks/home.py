"""The App Home tab: "Waiting for you", "Your requests", "Recently decided", paged under 100 blocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.blocks import _parts
from bot.blocks._kit import (
    VIEW_BLOCKS,
    Block,
    actions,
    as_utc,
    button,
    clip,
    context,
    header,
    ident,
    mention,
    section,
)
from bot.blocks._proposal import fits_card, pair_sections
from engine.model import Checkpoint, Decision, Run, RunStatus
from engine.shown import escape_markup, proposal_fields

__all__ = ["HOME_PAGE", "home_view"]

HOME_PAGE = "home.page"

# Room kept on every page for the pager: divider, "Page x of n", Previous, Next.
_PAGER_BLOCKS = 4
# a view over 250 kB is refused (view_too_large); a page stays well under it
_PAGE_BYTES = 180_000
_PROMPT_PREVIEW = 280
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
_STATUS = {
    RunStatus.queued: ":hourglass_flowing_sand: Queued",
    RunStatus.running: ":arrows_counterclockwise: Running",
    RunStatus.waiting: ":raised_hand: Waiting for a person",
    RunStatus.succeeded: ":white_check_mark: Succeeded",
    RunStatus.rejected: ":x: Rejected",
    RunStatus.failed: ":boom: Failed",
    RunStatus.cancelled: ":no_entry: Cancelled",
}


def _waiting_key(cp: Checkpoint) -> tuple[int, datetime, datetime]:
    due = as_utc(cp.due_at) if cp.due_at is not None else _FAR_FUTURE
    return _parts.rank(cp.priority), due, as_utc(cp.created_at)


def _waiting_item(cp: Checkpoint, now: datetime | None) -> list[Block]:
    """Title, prompt preview and details; the proposal in full next to the buttons, or, when it
    does not fit, "Review and approve…" instead of Approve."""
    lines = [_parts.title_markup(cp, bold=True)]
    if cp.prompt:
        lines.append(clip(_parts.prompt_markup(cp), _PROMPT_PREVIEW))
    details = [f"Requested by {mention(cp.requester)}"] if cp.requester else []
    if cp.due_at is not None:
        details.append(_parts.due_text(cp.due_at, now))
    if cp.quorum > 1:
        details.append(_parts.quorum_text(cp))
    if details:
        lines.append(" · ".join(details))
    blocks = [section("\n".join(lines), _parts.block_id("home", cp))]
    proposal = proposal_fields(cp)
    in_full = fits_card(proposal)
    if proposal and in_full:
        heading = "*Proposed answer:*" if cp.kind == "input" else "*Approve passes on:*"
        pairs, _ = pair_sections(proposal, lambda n: _parts.block_id(f"hprop{n}", cp), heading=heading)
        blocks += pairs
    elif proposal:
        note = f"{len(proposal)} proposed values, too long to show here: *Review and approve…* shows them."
        blocks.append(context([note], _parts.block_id("hprop", cp)))
    if buttons := _parts.option_buttons(cp, review=not in_full):
        blocks.append(actions(buttons, _parts.block_id("actions", cp)))
    return blocks


def _request_item(run: Run) -> list[Block]:
    status = _STATUS.get(run.status, str(run.status))
    text = f"*{escape_markup(run.workflow_id)}* · run `{ident(run.id)}`\n{status}"
    if run.reason:
        text += f" — {clip(escape_markup(run.reason), _PROMPT_PREVIEW)}"
    return [section(text, f"run:{run.id}")]


def _decided_item(cp: Checkpoint, decision: Decision) -> list[Block]:
    text = f"{_parts.title_markup(cp, bold=True)}\n{_parts.decision_line(decision)}"
    return [section(text, f"decided:{decision.id}")]


def _paginate(groups: list[tuple[str, str, list[list[Block]]]]) -> list[list[Block]]:
    """Greedy paging under 100 blocks and 250 kB a page; a group continued on a new page repeats
    its header as "(continued)"."""
    budget = VIEW_BLOCKS - _PAGER_BLOCKS
    pages: list[list[Block]] = [[]]
    used = [0]
    for n, (title, empty, items) in enumerate(groups):
        if len(pages[-1]) + 2 > budget:
            pages.append([])
            used.append(0)
        pages[-1].append(header(title, f"h{n}"))
        if not items:
            pages[-1].append(section(f"_{empty}_", f"empty{n}"))
        for item in items:
            size = len(json.dumps(item).encode())
            if len(pages[-1]) + len(item) > budget or (used[-1] + size > _PAGE_BYTES and len(pages[-1]) > 1):
                pages.append([header(f"{title} (continued)", f"h{n}")])
                used.append(0)
            pages[-1].extend(item)
            used[-1] += size
    return pages


def _pager(page: int, total: int) -> list[Block]:
    blocks: list[Block] = [
        {"type": "divider", "block_id": "pager"},
        section(f"Page {page + 1} of {total}", "page"),
    ]
    if page > 0:
        blocks.append(actions([button("Previous page", HOME_PAGE, value=str(page - 1))], "prev"))
    if page + 1 < total:
        blocks.append(actions([button("Next page", HOME_PAGE, value=str(page + 1))], "next"))
    return blocks


def home_view(
    *,
    waiting: list[Checkpoint],
    requests: list[Run],
    decided: list[tuple[Checkpoint, Decision]],
    page: int = 0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Home tab of one user.

    Args:
        waiting: open checkpoints assigned to the user (shown urgent first, then by due time).
        requests: runs the user started, newest first.
        decided: recently resolved checkpoints with their decisions, newest first.
        page: which page to show (clamped to the pages that exist); the "Next page" and
            "Previous page" buttons (action ``home.page``) carry the page number as value.
        now: the current time, for "Due in 2h".

    Returns:
        A ``views.publish`` view of type ``home`` with at most 100 blocks.
    """
    groups = [
        (
            "Waiting for you",
            "Nothing is waiting for you.",
            [_waiting_item(cp, now) for cp in sorted(waiting, key=_waiting_key)],
        ),
        ("Your requests", "You have not started any runs.", [_request_item(r) for r in requests]),
        ("Recently decided", "Nothing decided yet.", [_decided_item(cp, d) for cp, d in decided]),
    ]
    pages = _paginate(groups)
    current = max(0, min(page, len(pages) - 1))
    blocks = pages[current] + (_pager(current, len(pages)) if len(pages) > 1 else [])
    return {"type": "home", "callback_id": "home", "blocks": blocks}
