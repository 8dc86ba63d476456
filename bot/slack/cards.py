"""The message each copy of a checkpoint should show now: the open card, or the decided one."""

from __future__ import annotations

from typing import Any

from bot.blocks import checkpoint_message, decided_message
from bot.wiring import Container
from engine.errors import NotFound
from engine.model import Checkpoint, CheckpointStatus, Decision, ResolvedBy, Run
from engine.sensitive import Redactor, mask_marked, redact_checkpoint, redact_decision

__all__ = ["current_card", "workflow_title"]


def workflow_title(container: Container, run: Run | None) -> str:
    """The title of the run's workflow, or its id when the file is gone."""
    if run is None:
        return ""
    try:
        return container.catalog.get(run.workflow_id).title
    except NotFound:
        return run.workflow_id


def _closed_without_decision(cp: Checkpoint) -> Decision:
    # A run cancelled while waiting closes its checkpoint with no decision row; the card
    # still has to say so, credited to policy and never to a person.
    return Decision(
        id="",
        checkpoint_id=cp.id,
        run_id=cp.run_id,
        action="cancelled",
        actor="engine",
        channel="engine",
        resolved_by=ResolvedBy.policy,
        rule=cp.outcome.value if cp.outcome else "closed",
        created_at=cp.resolved_at or cp.created_at,
    )


def _without_buttons(message: dict[str, Any]) -> dict[str, Any]:
    blocks = [
        b
        for b in message["blocks"]
        if not (b.get("type") == "actions" and str(b.get("block_id", "")).startswith("actions:"))
    ]
    return {**message, "blocks": blocks}


async def current_card(
    container: Container, cp: Checkpoint, *, watcher: bool = False, flagged: str | None = None
) -> dict[str, Any]:
    """``{"text", "blocks"}`` for ``chat.postMessage``/``chat.update`` of one copy of ``cp``.

    Args:
        container: the wired process.
        cp: the checkpoint as stored now.
        watcher: a copy for someone who is told but may not decide (no decision buttons).
        flagged: why the verifier flagged the decision, shown on the decided card.
    """
    store = container.store
    if cp.status is CheckpointStatus.resolved:
        decisions = await store.list_decisions(checkpoint_id=cp.id)
        decision = decisions[-1] if decisions else _closed_without_decision(cp)
        # a sensitive field's before -> after is never shown (engine.sensitive)
        try:
            r = await container.engine.redactor(await store.get_run(cp.run_id))
        except NotFound:
            r = Redactor()
        shown_cp = redact_checkpoint(r, cp)
        return decided_message(
            shown_cp,
            redact_decision(r, decision).model_copy(
                update={"data": mask_marked(decision.data, cp.response_schema)}
            ),
            before=mask_marked(shown_cp.proposed, cp.response_schema),
            flagged=flagged,
        )
    try:
        run: Run | None = await store.get_run(cp.run_id)
    except NotFound:
        run = None
    message = checkpoint_message(
        cp,
        run=run,
        workflow_title=workflow_title(container, run),
        delegated_from=cp.delegations or None,
        now=container.clock.now(),
    )
    return _without_buttons(message) if watcher else message
