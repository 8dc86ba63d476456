"""What one Slack user sees: checkpoints waiting for them, their runs, recent decisions (with
many workspaces, only those of the workspace they are in, ``install.in_workspace``)."""

from __future__ import annotations

from typing import Any

from bot.blocks import home_view
from bot.slack.install import TEAM, in_workspace
from bot.wiring import Container
from engine.model import Checkpoint, CheckpointStatus, Decision, Run
from engine.ports import Directory

__all__ = ["affected_users", "home_for", "waiting_for"]

_WAITING = 200
_RUN_SCAN = 200
_RECENT_SCAN = 100
_REQUESTS = 30
_DECIDED = 10


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
    """Open checkpoints ``user`` may decide, newest first (through the assignee index, so the
    oldest are found as surely as the newest; the Home tab shows the newest ``_WAITING``)."""
    # read groups and roles in this workspace only: the Home tab shows nothing of another's
    page = await container.engine.waiting_for(user, limit=_WAITING, team=TEAM.get())
    return [cp for cp in page.items if in_workspace(cp.team)]


async def _requests(container: Container, user: str) -> list[Run]:
    runs = await container.store.list_runs(limit=_RUN_SCAN)
    return [r for r in runs if r.requester == user and in_workspace(r.team)][:_REQUESTS]


async def _decided(
    container: Container, directory: Directory, user: str
) -> list[tuple[Checkpoint, Decision]]:
    out: list[tuple[Checkpoint, Decision]] = []
    for cp in await container.store.list_checkpoints(limit=_RECENT_SCAN):
        if cp.status is not CheckpointStatus.resolved or not in_workspace(cp.team):
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
