"""What one Slack user sees: checkpoints waiting for them, their runs, recent decisions."""

from __future__ import annotations

from typing import Any

from bot.blocks import home_view
from bot.wiring import Container
from engine.model import Checkpoint, CheckpointStatus, Decision, Delegation, Run
from engine.ports import Directory

__all__ = ["affected_users", "home_for", "may_decide", "waiting_for"]

_OPEN_SCAN = 500
_RUN_SCAN = 200
_RECENT_SCAN = 100
_REQUESTS = 30
_DECIDED = 10


async def may_decide(
    container: Container,
    directory: Directory,
    cp: Checkpoint,
    user: str,
    *,
    named: bool = False,
    active: list[Delegation] | None = None,
) -> bool:
    """True when ``user`` could decide ``cp`` now (the decision gate's rules, nothing audited).

    Args:
        container: the wired process.
        directory: resolves user groups and channels (the engine's gate reads the same one).
        cp: the checkpoint.
        user: a Slack user id.
        named: count only people reached by name, role, group or delegation, not everyone in an
            assigned channel (the Home tab lists what is waiting for *you*).
    """
    if named and not await _named(container, cp, user, active):
        return False
    return await container.engine.can_decide(cp, user, active)


async def _named(container: Container, cp: Checkpoint, user: str, active: list[Delegation] | None) -> bool:
    reach = await container.engine.gate.reach(cp)
    if user in reach.users:
        return True
    found = await container.engine.gate.principal_of(cp, user, container.clock.now(), active)
    return found is not None and found[1] == "delegation"


async def affected_users(container: Container, directory: Directory, cp: Checkpoint) -> list[str]:
    """Everyone whose Home tab shows ``cp``: the people it names, their delegates, its requester."""
    reach = await container.engine.gate.reach(cp)
    delegates = [
        d.delegate
        for d in await container.store.list_delegations(active_at=container.clock.now())
        if d.delegator in reach.users
    ]
    return sorted({*reach.users, *delegates, cp.requester} - {""})


async def waiting_for(container: Container, directory: Directory, user: str) -> list[Checkpoint]:
    """Open checkpoints ``user`` may decide, newest first."""
    found = []
    active = await container.store.list_delegations(active_at=container.clock.now())
    for cp in await container.store.list_checkpoints(open_only=True, limit=_OPEN_SCAN):
        if await may_decide(container, directory, cp, user, named=True, active=active):
            found.append(cp)
    return found


async def _requests(container: Container, user: str) -> list[Run]:
    runs = await container.store.list_runs(limit=_RUN_SCAN)
    return [r for r in runs if r.requester == user][:_REQUESTS]


async def _decided(
    container: Container, directory: Directory, user: str
) -> list[tuple[Checkpoint, Decision]]:
    out: list[tuple[Checkpoint, Decision]] = []
    for cp in await container.store.list_checkpoints(limit=_RECENT_SCAN):
        if cp.status is not CheckpointStatus.resolved:
            continue
        if user not in await affected_users(container, directory, cp):
            continue
        decisions = await container.store.list_decisions(checkpoint_id=cp.id)
        if decisions:
            out.append((cp, decisions[-1]))
        if len(out) >= _DECIDED:
            break
    return out


async def home_for(container: Container, directory: Directory, user: str, page: int = 0) -> dict[str, Any]:
    """The ``views.publish`` view of ``user``'s Home tab (at most 100 blocks, paged)."""
    return home_view(
        waiting=await waiting_for(container, directory, user),
        requests=await _requests(container, user),
        decided=await _decided(container, directory, user),
        page=page,
        now=container.clock.now(),
    )
