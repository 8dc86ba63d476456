"""Delegation: for a period, a person's new checkpoints go to someone else."""

from __future__ import annotations

from datetime import datetime

from engine.errors import InvalidInput
from engine.model import Delegation
from engine.ports import AuditDraft
from engine.service import Engine

__all__ = ["delegate"]


async def delegate(
    engine: Engine,
    *,
    delegator: str,
    to: str,
    until: datetime,
    actor: str,
    channel: str,
    starts_at: datetime | None = None,
) -> Delegation:
    """Record that ``delegator``'s new checkpoints go to ``to`` until ``until`` (exclusive).

    Raises:
        InvalidInput: delegating to oneself, or a period that is already over.
    """
    now = engine.clock.now()
    start = starts_at or now
    errors: dict[str, str] = {}
    if to == delegator:
        errors["to"] = "choose someone else than yourself"
    if until <= max(start, now):
        errors["until"] = f"must be in the future (after {max(start, now):%Y-%m-%d %H:%M} UTC)"
    if errors:
        raise InvalidInput("the delegation is not valid", errors)
    delegation = Delegation(
        id=engine.ids.new("dlg_"),
        delegator=delegator,
        delegate=to,
        starts_at=start,
        until=until,
        created_by=actor,
        created_at=now,
    )
    audit = AuditDraft(
        at=now,
        actor=actor,
        channel=channel,
        kind="delegation.created",
        payload={
            "delegator": delegator,
            "delegate": to,
            "starts_at": start.isoformat(),
            "until": until.isoformat(),
        },
    )
    await engine.store.add_delegation(delegation, [audit])
    return delegation
