"""What waits for a person (private: use ``engine.service.Engine``).

"Waiting for me" is answered through an index of checkpoint assignees, never by scanning recent
checkpoints: a person's principals (their user, the roles they hold, the user groups and
channels of open checkpoints they belong to, and the same for everyone they stand in for under
an active delegation) select the open checkpoints, newest first, one page at a time; the
decision gate's own rules then drop what they could not decide (their own requests).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine._deciding import Deciding
from engine.model import Checkpoint
from engine.roles import parse_principal

__all__ = ["Inbox", "Page"]


@dataclass(frozen=True)
class Page:
    """One page of open checkpoints and the cursor of the next one (None: no more)."""

    items: list[Checkpoint]
    next: tuple[datetime, str] | None


class Inbox(Deciding):
    """Open checkpoints a person may decide, complete at any count."""

    async def principals_of(self, actor: str) -> list[str]:
        """Every principal through which ``actor`` may decide, delegations included."""
        now = self.clock.now()
        active = await self.store.list_delegations(active_at=now)
        people = [actor, *(d.delegator for d in active if d.delegate == actor and d.delegator != actor)]
        shared = await self.store.open_principals(("group", "channel"))
        directory = self.deps.directory
        out: list[str] = []
        for person in dict.fromkeys(people):
            out.append(f"user:{person}")
            for name in self.catalog.roles:
                reach = await self.gate.reach_of([f"role:{name}"])
                if person in reach.users:
                    out.append(f"role:{name}")
            for principal in shared:
                if directory is None:
                    break
                kind, name = parse_principal(principal)
                members = (
                    await directory.group_members(name)
                    if kind == "group"
                    else await directory.channel_members(name)
                )
                if person in members:
                    out.append(principal)
        return list(dict.fromkeys(out))

    async def waiting_for(
        self, actor: str, *, limit: int = 100, before: tuple[datetime, str] | None = None
    ) -> Page:
        """Open checkpoints ``actor`` may decide now, newest first, ``limit`` at a time."""
        principals = await self.principals_of(actor)
        found = await self.store.open_checkpoints_for(principals, limit=limit, before=before)
        active = await self.store.list_delegations(active_at=self.clock.now())
        items = [cp for cp in found if await self.can_decide(cp, actor, active)]
        following = (found[-1].created_at, found[-1].id) if len(found) == limit else None
        return Page(items=items, next=following)
