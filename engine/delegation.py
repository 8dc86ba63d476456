"""Delegation: for a bounded period, someone may decide in a person's stead.

A delegation cannot be used to hand authority to just anyone:

- the delegate must be able to hold every role the delegator holds: a member of the role, or
  listed in its ``delegates`` in the roles file (an explicit allow list); a delegator who holds
  no role has no role to hand over, so only an admin may record a delegation for them;
- it lasts at most ``Engine.delegation_max`` (``SIGNOFF_DELEGATION_MAX_DAYS``, 30 days by
  default) and can be ended early (``end_delegations``);
- only the delegator or an admin records or ends it.

While it is active, the delegate's vote counts as the delegator's (the decision gate resolves it
at decision time, so one person's authority is never counted twice toward a quorum), the
delegator's new cards go to the delegate too, and pools pass the delegator over.
"""

from __future__ import annotations

from datetime import datetime

from engine.errors import InvalidInput, NotAllowed
from engine.model import Delegation
from engine.policy import is_admin
from engine.ports import AuditDraft
from engine.service import Engine

__all__ = ["delegate", "end_delegations", "roles_of"]


async def roles_of(engine: Engine, user: str) -> list[str]:
    """Names of the roles ``user`` holds (as a member, directly or through a user group, under
    any of their identities)."""
    held = []
    mine = await engine.gate.aliases(user)  # every identity of the person (engine.people)
    for name, role in engine.catalog.roles.items():
        if mine & (await engine.gate.reach_of(role.members)).principals:
            held.append(name)
    return held


async def _may_stand_in(engine: Engine, delegator: str, to: str) -> str | None:
    """Why ``to`` may not stand in for ``delegator`` (None when they may)."""
    roles = engine.catalog.roles
    held = await roles_of(engine, delegator)
    if not held:
        return (
            f"{delegator} holds no role in the roles file, so there is no role to hand over; "
            "an admin can record this delegation"
        )
    theirs = await engine.gate.aliases(to)
    for name in held:
        allowed = await engine.gate.reach_of([*roles[name].members, *roles[name].delegates])
        if not theirs & allowed.principals:
            return (
                f"{to} may not hold the role '{name}' that {delegator} holds: add them to its members "
                "or to its delegates in the roles file"
            )
    return None


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
    """Record that ``to`` may decide for ``delegator`` until ``until`` (exclusive).

    Raises:
        InvalidInput: delegating to oneself, a period that is over or too long, or a delegate
            who may not hold the delegator's roles (field errors ``to`` / ``until``).
        NotAllowed: someone else than the delegator (or an admin) asked.
    """
    now = engine.clock.now()
    start = starts_at or now
    admin = is_admin(actor, engine.catalog.roles)
    if actor != delegator and not admin:
        raise NotAllowed(f"only {delegator} or an admin can delegate {delegator}'s checkpoints")
    errors: dict[str, str] = {}
    if to == delegator:
        errors["to"] = "choose someone else than yourself"
    elif not admin and (why := await _may_stand_in(engine, delegator, to)) is not None:
        errors["to"] = why
    if until <= max(start, now):
        errors["until"] = f"must be in the future (after {max(start, now):%Y-%m-%d %H:%M} UTC)"
    elif until - start > engine.delegation_max:
        days = engine.delegation_max.total_seconds() / 86400
        errors["until"] = f"a delegation lasts at most {days:g} days (SIGNOFF_DELEGATION_MAX_DAYS)"
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
            "by_admin": admin and actor != delegator,
        },
    )
    await engine.store.add_delegation(delegation, [audit])
    return delegation


async def end_delegations(
    engine: Engine, *, delegator: str, actor: str, channel: str, to: str | None = None
) -> list[Delegation]:
    """End ``delegator``'s active delegations now (only the one to ``to`` when given).

    Returns the delegations ended (empty when none was active).

    Raises:
        NotAllowed: someone else than the delegator (or an admin) asked.
    """
    if actor != delegator and not is_admin(actor, engine.catalog.roles):
        raise NotAllowed(f"only {delegator} or an admin can end {delegator}'s delegations")
    now = engine.clock.now()
    ended = []
    for d in await engine.store.list_delegations(active_at=now, delegator=delegator):
        if to is not None and d.delegate != to:
            continue
        audit = AuditDraft(
            at=now,
            actor=actor,
            channel=channel,
            kind="delegation.ended",
            payload={"delegation": d.id, "delegator": d.delegator, "delegate": d.delegate},
        )
        ended.append(await engine.store.end_delegation(d.id, now, [audit]))
    return ended
