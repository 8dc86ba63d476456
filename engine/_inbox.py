"""What waits for a person (private: use ``engine.service.Engine``).

"Waiting for me" is answered through an index of checkpoint assignees, never by scanning recent
checkpoints: a person's principals (their user, the roles they hold, the user groups and
channels of open checkpoints they belong to, and the same for everyone they stand in for under
an active delegation) select the open checkpoints, newest first, one page at a time; the
decision gate's own rules then drop what they could not decide (their own requests, and a
checkpoint of a workspace where they are not in the group that names it).

With several Slack workspaces installed nothing outside a Slack request says which workspace a
user group belongs to, so the index gives each open group with the workspaces of the checkpoints
assigned to it, and the group is read in those; a role's groups are read in each installed
workspace. A member of a group sees its checkpoints in the console as in Slack. A Slack request
reads groups and roles in its own workspace only, the only one whose items it shows. Channels
are read in the workspace at hand only (``engine.ports.Directory``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from engine._deciding import Deciding
from engine.gate import Gate
from engine.installations import InstallationStore
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

    async def principals_of(self, actor: str, *, team: str | None = None) -> list[str]:
        """Every principal through which ``actor`` may decide, delegations included: every
        identity linked to the person (``engine.people``), the roles, user groups and channels
        that any of them belongs to, and the same for each person they stand in for.

        ``team``: the Slack workspace the answer is for (a Slack request's); user groups and roles
        are then read in it only. None (the console, the CLI): a user group is read in the
        workspace of each open checkpoint assigned to it, a role in every installed workspace.
        """
        active = await self.store.list_delegations(active_at=self.clock.now())
        return await self._principals_of(self.gate, actor, active, team)

    async def _principals_of(
        self, gate: Gate, actor: str, active: list[Delegation], team: str | None
    ) -> list[str]:
        mine = await gate.aliases(actor)
        persons = [mine]
        for d in active:
            if as_principal(d.delegate) in mine and as_principal(d.delegator) not in mine:
                persons.append(await gate.aliases(d.delegator))
        # the open user groups and channels, each with the workspaces of the checkpoints assigned
        # to it: they matter only when someone can say who is in a group or channel
        users = any(a.startswith("user:") for aliases in persons for a in aliases)
        asks = self.deps.directory is not None and users
        shared = await self.store.open_principals(("group", "channel")) if asks else []
        teams: dict[str, list[str | None]] = {}
        for principal, where in shared:
            teams.setdefault(principal, []).append(where)
        if team is not None:
            # a Slack request shows its own workspace's items only: read nothing of another's
            teams = {p: [team] for p, where in teams.items() if team in where or None in where}
        role_teams: list[str | None] = [team] if team is not None else await self._installed_teams()
        out: list[str] = []
        for aliases in persons:
            out.extend(sorted(aliases))
            out.extend([r async for r in self._roles_of(gate, aliases, role_teams)])
            out.extend(await self._shared_of(aliases, teams))
        return list(dict.fromkeys(out))

    async def _installed_teams(self) -> list[str | None]:
        """Where a role's user groups are read outside a Slack request: the workspace at hand
        (the only one, with one installed) and, with several, each of them. No role holds a
        user group: nothing to read, and no read of the installations."""
        groups = any(m.startswith("group:") for role in self.catalog.roles.values() for m in role.members)
        if not groups or not isinstance(self.store, InstallationStore) or self.deps.directory is None:
            return [None]
        installed = [i.team_id for i in await self.store.list_installations()]
        return [None, *installed] if len(installed) > 1 else [None]

    async def _roles_of(
        self, gate: Gate, aliases: frozenset[str], teams: list[str | None]
    ) -> AsyncIterator[str]:
        """The roles the person holds: as named, or through a user group read in one of
        ``teams`` (the gate reads a checkpoint's groups in its own workspace again per item)."""
        for name in self.catalog.roles:
            role = f"role:{name}"
            for team in teams:
                if aliases & (await gate.reach_of([role], team=team)).principals:
                    yield role
                    break

    async def _shared_of(self, aliases: frozenset[str], teams: dict[str, list[str | None]]) -> list[str]:
        """The user groups and channels among the open ones (``teams``) that the person belongs
        to. A group is read in the workspace of each open checkpoint assigned to it, so a member
        sees a group's checkpoints whichever workspaces are installed; a channel only in the
        workspace at hand (``engine.ports.Directory``: Slack Connect)."""
        directory = self.deps.directory
        users = {actor_of(a) for a in aliases if a.startswith("user:")}
        if directory is None or not users:
            return []
        out: list[str] = []
        for principal, where in teams.items():
            kind, name = parse_principal(principal)
            if kind == "group":
                for team in dict.fromkeys(where):
                    if users & set(await directory.group_members(name, team)):
                        out.append(principal)
                        break
            elif kind == "channel" and users & set(await directory.channel_members(name)):
                out.append(principal)
        return out

    async def waiting_for(
        self,
        actor: str,
        *,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
        team: str | None = None,
    ) -> Page:
        """Open checkpoints ``actor`` may decide now, newest first, ``limit`` at a time
        (``team``: as in ``principals_of``).

        The active delegations are read once, and each person's identities once (a gate that
        remembers them for this list), so a page costs a few reads, not a few per item.
        """
        gate = self.gate.remembering()
        active = await self.store.list_delegations(active_at=self.clock.now())
        principals = await self._principals_of(gate, actor, active, team)
        found = await self.store.open_checkpoints_for(principals, limit=limit, before=before)
        items = [cp for cp in found if await self._can_decide(gate, cp, actor, active)]
        following = (found[-1].created_at, found[-1].id) if len(found) == limit else None
        return Page(items=items, next=following, principals=principals)
