"""What changed in a proposal since the copy a person saw (private).

A decision form carries the hash of the document it rendered (``engine.shown.shown_hash``).
When the decision is refused as stale, the proposal that person saw is rebuilt from the
current one by undoing the ``checkpoint.edited`` audit events, newest first, until the hash
matches. The form only chooses which stored state to compare with; nothing it says is executed,
and a hash that matches no stored state shows no diff at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.model import AuditEvent, Checkpoint
from engine.shown import display_text, field_label, shown_hash

_MISSING = object()


@dataclass(frozen=True)
class Change:
    """One proposal field as the person saw it and as it is now (``None``: not set)."""

    field: str
    label: str
    before: str | None
    after: str | None


def _undo(proposal: dict[str, Any], diff: Any) -> dict[str, Any]:
    undone = dict(proposal)
    if not isinstance(diff, dict):
        return undone
    for name, change in diff.items():
        before = change.get("before", _MISSING) if isinstance(change, dict) else _MISSING
        if before is None or before is _MISSING:
            # diff_fields records an absent field as null
            undone.pop(name, None)
        else:
            undone[name] = before
    return undone


def seen_proposal(cp: Checkpoint, events: list[AuditEvent], seen: str) -> dict[str, Any] | None:
    """The proposal whose rendering hashes to ``seen``, or None when no stored state does."""
    if not seen:
        return None
    edits = [e for e in events if e.kind == "checkpoint.edited" and e.checkpoint_id == cp.id]
    proposal = dict(cp.proposed)
    for event in [None, *reversed(edits)]:
        if event is not None:
            proposal = _undo(proposal, event.payload.get("diff"))
        if shown_hash(cp.model_copy(update={"proposed": proposal})) == seen:
            return proposal
    return None


def changes_since(cp: Checkpoint, events: list[AuditEvent], seen: str) -> list[Change] | None:
    """Fields changed between the copy hashed ``seen`` and ``cp`` (None: that copy is unknown)."""
    before = seen_proposal(cp, events, seen)
    if before is None:
        return None
    names = list(cp.proposed) + [k for k in before if k not in cp.proposed]
    return [
        Change(
            field=name,
            label=field_label(name, cp.response_schema),
            before=display_text(before[name]) if name in before else None,
            after=display_text(cp.proposed[name]) if name in cp.proposed else None,
        )
        for name in names
        if before.get(name, _MISSING) != cp.proposed.get(name, _MISSING)
    ]
