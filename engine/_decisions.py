"""Building a decision: validation, the data the next node receives, the diff, the update."""

from __future__ import annotations

from typing import Any

from engine.errors import InvalidInput, NotAllowed
from engine.inputs import schema_errors
from engine.model import Checkpoint, CheckpointOutcome

__all__ = ["decision_payload", "diff_fields", "normalise_action", "outcome_of", "schema_errors"]


def normalise_action(cp: Checkpoint, action: str, *, by_policy: bool) -> str:
    """Map synonyms and refuse actions the checkpoint does not offer."""
    action = "edit" if action == "modify" else action
    if by_policy:
        return action
    offered = set(cp.options)
    if cp.kind == "input":
        offered |= {"answer", "reject"}
    if action not in offered:
        raise NotAllowed(
            f"'{action}' is not an option here; choose one of: {', '.join(sorted(offered))}",
            rule="not_offered",
        )
    return action


def decision_payload(cp: Checkpoint, action: str, data: dict[str, Any]) -> dict[str, Any]:
    """The fields the next node receives, validated against the response schema.

    approve and custom options pass the proposed values on; edit merges the edits into them;
    answer takes the answer; reject passes nothing on.
    """
    if action == "reject":
        return {}
    if action == "edit":
        unknown = sorted(set(data) - set(cp.response_schema.get("properties", {})))
        if unknown and cp.response_schema.get("properties"):
            raise InvalidInput(
                "edit names fields this checkpoint does not have", {f: "not editable" for f in unknown}
            )
        # an edit may clear an optional field by sending null
        merged = {k: v for k, v in {**cp.proposed, **data}.items() if not (v is None and k in data)}
    elif action == "answer":
        merged = {**cp.proposed, **data}
    else:
        merged = dict(cp.proposed)
    errors = schema_errors(cp.response_schema, merged)
    if errors:
        raise InvalidInput("the answer does not fit the checkpoint's response schema", errors)
    return merged


def diff_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Changed fields as {field: {"before": ..., "after": ...}}."""
    keys = sorted(set(before) | set(after))
    return {
        k: {"before": before.get(k), "after": after.get(k)} for k in keys if before.get(k) != after.get(k)
    }


def outcome_of(action: str, resolved_by: str) -> CheckpointOutcome:
    """The checkpoint outcome for an action; a timeout is never a person's reject."""
    if resolved_by == "timeout":
        return CheckpointOutcome.timed_out
    return {
        "approve": CheckpointOutcome.approved,
        "reject": CheckpointOutcome.rejected,
        "edit": CheckpointOutcome.edited,
        "answer": CheckpointOutcome.answered,
    }.get(action, CheckpointOutcome.option)
