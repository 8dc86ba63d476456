"""What waits for a person (private: use ``engine.service.Engine``).

"Waiting for me" is answered through an index of checkpoint assignees, never by scanning recent
checkpoints: a person's principals (their user, the roles they hold, the user groups and
channels of open checkpoints they belong to, and the same for everyone they stand in for under
an active delegation) select the open checkpoints, newest first, one page at a time; the
decision gate's own rules then drop what they could not decide (their own requests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine._deciding import Deciding
from engine.gate import Gate
from engine.model import Checkpoint, Delegation
from engine.people import actor_of, as_principal
from engine.roles import parse_principal

__all__ = ["Inbox", "Page"]


@dataclass(frozen=True)
class Page:
    """One page of open checkpoints and the cursor of the next one (None: no more), and the
    principals they were looked up by (``Inbox.principals_of`` as the page read them)."""

    items: list[Checkpoint]
    next: tuple[datetime, str] | None
    principals: list[str] = field(default_factory=list)


class Inbox(Deciding):
    """Open checkpoints a person may decide, complete at any count."""

    async def principals_of(self, actor: str) -> list[str]:
        """Every principal through which ``actor`` may decide, delegations included: every
        identity linked to the person (``engine.people``), the roles, user groups and channels
        that any of them belongs to, and the same for each person they stand in for."""
        active = await self.store.list_delegations(active_at=self.clock.now())
        return await self._principals_of(self.gate, actor, active)

    async def _principals_of(self, gate: Gate, actor: str, active: list[Delegation]) -> list[str]:
        mine = await gate.aliases(actor)
        persons = [mine]
        for d in active:
            if as_principal(d.delegate) in mine and as_principal(d.delegator) not in mine:
                persons.append(await gate.aliases(d.delegator))
        # the open user groups and channels matter only when someone can say who is in them
        users = any(a.startswith("user:") for aliases in persons for a in aliases)
        asks = self.deps.directory is not None and users
        shared = await self.store.open_principals(("group", "channel")) if asks else []
        out: list[str] = []
        for aliases in persons:
            out.extend(sorted(aliases))
            for name in self.catalog.roles:
                reach = await gate.reach_of([f"role:{name}"])
                if aliases & reach.principals:
                    out.append(f"role:{name}")
            out.extend(await self._shared_of(aliases, shared))
        return list(dict.fromkeys(out))

    async def _shared_of(self, aliases: frozenset[str], shared: list[str]) -> list[str]:
        """The user groups and channels among ``shared`` that the person belongs to."""
        directory = self.deps.directory
        users = {actor_of(a) for a in aliases if a.startswith("user:")}
        if directory is None or not users:
            return []
        out: list[str] = []
        for principal in shared:
            kind, name = parse_principal(principal)
            members = (
                await directory.group_members(name)
                if kind == "group"
                else await directory.channel_members(name)
            )
            if users & set(members):
                out.append(principal)
        return out

    async def waiting_for(
        self, actor: str, *, limit: int = 100, before: tuple[datetime, str] | None = None
    ) -> Page:
        """Open checkpoints ``actor`` may decide now, newest first, ``limit`` at a time.

        The active delegations are read once, and each person's identities once (a gate that
        remembers them for this list), so a page costs a few reads, not a few per item.
        """
        gate = self.gate.remembering()
        active = await self.store.list_delegations(active_at=self.clock.now())
        principals = await self._principals_of(gate, actor, active)
        found = await self.store.open_checkpoints_for(principals, limit=limit, before=before)
        items = [cp for cp in found if await self._can_decide(gate, cp, actor, active)]
        following = (found[-1].created_at, found[-1].id) if len(found) == limit else None
        return Page(items=items, next=following, principals=principals)
