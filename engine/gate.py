"""The decision gate: the one place that says whether an attempt to decide a checkpoint counts.

Every path that can decide (Slack buttons, modals and App Home, the web console, the CLI, email
links, the HTTP API, timers) reaches ``Gate.admit`` through ``Engine.decide`` (or
``Engine.may_decide`` before opening a form). It applies, in order:

1. the workspace: an attempt from Slack is refused when it comes from another team than the
   installation's (single-workspace mode) or than the checkpoint's own (a run started from a
   workspace, multi-workspace mode): a decision from team A never touches team B's checkpoint;
2. the action: only options the checkpoint offers;
3. the version: a decision made on a copy older than the current proposal is refused
   (``StaleVersion``), and so is a version that never existed;
4. policy decisions (timers): only when the deadline has passed, and an approval only where the
   escalation chain says ``auto_approve`` at the current level;
5. for people: never an agent (an API key bound to no person, invariant 24); who they decide
   for (their *principal*: themselves when they are an assignee — named, through a role, a user
   group or channel membership —, the delegator when they act under an active delegation),
   never the requester of an approval or review unless the node allows it, one vote per
   principal toward a quorum, not the editor of a quorum edit approving it, and the typed
   confirmation word. People are compared by person, not by name: the identities linked to one
   person (a Slack id, an email address, ``engine.people``) are one person here.

A refusal raises ``NotAllowed`` (with a ``rule`` code) or ``StaleVersion``, and the engine records
a ``decision.refused`` audit event saying who tried what and why; nothing else changes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from engine.agents import is_agent
from engine.errors import NotAllowed, StaleVersion
from engine.escalation import step_at
from engine.model import Checkpoint, Delegation, HumanConfig
from engine.nodes.base import NodeDeps
from engine.people import actor_of, as_principal
from engine.ports import Directory, RunStore
from engine.roles import Role, parse_principal

__all__ = ["SELF_APPROVAL_KINDS", "Admission", "Attempt", "Gate", "Reach"]

SELF_APPROVAL_KINDS = frozenset({"approval", "review"})
"""Kinds where a requester may not decide their own request (an ``input`` asks them for facts)."""


@dataclass(frozen=True)
class Attempt:
    """What someone (or a timer) tries to do, as the gate sees it."""

    actor: str
    action: str
    channel: str
    resolved_by: str = "human"
    rule: str | None = None
    team: str | None = None
    expected_version: int | None = None
    confirm: str | None = None
    check_confirm: bool = True


@dataclass(frozen=True)
class Admission:
    """An admitted attempt: whose authority it carries, and how."""

    principal: str
    via: str  # "assignee", "channel", "delegation" or "policy"
    version_checked: bool


@dataclass(frozen=True)
class Reach:
    """Who may decide a checkpoint now: named people (``users``: user ids; ``emails``: email
    principals) and the channels whose members may."""

    users: frozenset[str]
    channels: tuple[str, ...]
    emails: frozenset[str] = frozenset()

    @property
    def principals(self) -> frozenset[str]:
        """The named people as principals (``user:U1``, ``email:ann@corp.example``)."""
        return frozenset({*(f"user:{u}" for u in self.users), *self.emails})


class Gate:
    """The rules every decision passes, with the ports they need.

    Args:
        roles: role name -> members, from the roles file.
        deps: the node dependencies; their ``directory`` (user groups and channel members,
            Slack) is read at decision time. Without one (local mode) groups and channels have
            no members anyone can check, so nobody decides through them. Their ``people``
            (``engine.people``) say which identities name the same person: every comparison of
            people below (assignee, delegation, requester, quorum, editor) is made on them.
        store: active delegations.
        team: the Slack workspace this installation serves (None outside Slack); the Slack
            surface sets it from ``auth.test`` at start-up.
    """

    def __init__(
        self,
        *,
        roles: Mapping[str, Role],
        deps: NodeDeps,
        store: RunStore,
        team: str | None = None,
    ) -> None:
        self.roles = roles
        self.deps = deps
        self.store = store
        self.team = team
        self._known: dict[str, frozenset[str]] | None = None

    def remembering(self) -> Gate:
        """This gate, reading each person's identities once: for one list of many checkpoints
        (what waits for someone), which would otherwise read the same few people per item."""
        gate = copy.copy(self)
        gate._known = {}
        return gate

    @property
    def directory(self) -> Directory | None:
        """Where group and channel members are looked up (None: nowhere)."""
        return self.deps.directory

    async def aliases(self, who: str) -> frozenset[str]:
        """Every principal naming the person ``who`` (an actor or a principal) names, itself
        included: ``U024BE7LH`` -> ``{user:U024BE7LH, email:ann@corp.example}`` once linked."""
        principal = as_principal(who)
        if self._known is not None and principal in self._known:
            return self._known[principal]
        people = self.deps.people
        person = None if people is None else await people.find_person(principal)
        found = frozenset({principal}) if person is None else frozenset({principal, *person.principals})
        if self._known is not None:
            self._known[principal] = found
        return found

    async def same_person(self, a: str, b: str) -> bool:
        """True when ``a`` and ``b`` (actors or principals) name the same person."""
        return as_principal(b) in await self.aliases(a)

    async def _among(self, who: str, others: list[str]) -> bool:
        mine = await self.aliases(who)
        return any(as_principal(other) in mine for other in others)

    # ------------------------------------------------------------------ who may decide

    async def reach(self, cp: Checkpoint) -> Reach:
        """The people named by ``cp``'s assignees (roles and groups expanded now, in ``cp``'s
        workspace) and its channels."""
        return await self.reach_of(cp.assignees, team=cp.team)

    async def reach_of(self, principals: list[str], *, team: str | None = None) -> Reach:
        """The people ``principals`` name (roles and groups expanded now, in workspace ``team``;
        None: the one at hand) and their channels."""
        users, channels = await self._expand(principals, set(), team)
        emails = frozenset(u for u in users if u.startswith("email:"))
        return Reach(frozenset(users - emails), tuple(dict.fromkeys(channels)), emails)

    async def _expand(
        self, principals: list[str], seen_roles: set[str], team: str | None
    ) -> tuple[set[str], list[str]]:
        users: set[str] = set()
        channels: list[str] = []
        for principal in principals:
            try:
                kind, name = parse_principal(principal)
            except ValueError:
                continue
            if kind == "user":
                users.add(name)
            elif kind == "email":
                users.add(f"email:{name}")
            elif kind == "channel":
                channels.append(name)
            elif kind == "group" and self.directory is not None:
                users.update(await self.directory.group_members(name, team))
            elif kind == "role" and name in self.roles and name not in seen_roles:
                sub, chans = await self._expand(self.roles[name].members, seen_roles | {name}, team)
                users |= sub
                channels += chans
        return users, channels

    async def principal_of(
        self, cp: Checkpoint, actor: str, now: datetime, active: list[Delegation] | None = None
    ) -> tuple[str, str] | None:
        """``(principal, via)`` when ``actor`` may decide ``cp`` now, else None.

        ``active`` are the delegations active now, when the caller has read them already (a
        list of many checkpoints reads them once).
        """
        reach = await self.reach(cp)
        mine = await self.aliases(actor)
        if mine & reach.principals:
            return actor, "assignee"
        if await self._in_channels(mine, reach):
            return actor, "channel"
        if active is None:
            active = await self.store.list_delegations(active_at=now)
        for delegation in active:
            if as_principal(delegation.delegate) not in mine or as_principal(delegation.delegator) in mine:
                continue
            theirs = await self.aliases(delegation.delegator)
            if theirs & reach.principals or await self._in_channels(theirs, reach):
                return delegation.delegator, "delegation"
        return None

    async def _in_channels(self, aliases: frozenset[str], reach: Reach) -> bool:
        # channels are read in the request's workspace only (``engine.ports.Directory``)
        if self.directory is None or not reach.channels:
            return False
        users = {actor_of(a) for a in aliases if a.startswith("user:")}
        for channel in reach.channels:
            if users & set(await self.directory.channel_members(channel)):
                return True
        return False

    # ------------------------------------------------------------------ the gate

    async def admit(
        self, cp: Checkpoint, attempt: Attempt, now: datetime, config: HumanConfig | None
    ) -> Admission:
        """Every rule, in order; raises ``NotAllowed`` or ``StaleVersion`` on the first that refuses."""
        self._check_team(cp, attempt)
        version_checked = self._check_version(cp, attempt)
        if attempt.resolved_by != "human":
            self._check_policy(cp, attempt, now, config)
            return Admission(principal=attempt.actor, via="policy", version_checked=version_checked)
        if is_agent(attempt.actor):
            raise NotAllowed(
                "an agent's API key can ask and read, never decide: a person decides "
                "(in Slack, the console, the CLI, or with an API key bound to them)",
                rule="agent_cannot_decide",
            )
        found = await self.principal_of(cp, attempt.actor, now)
        if found is None:
            raise _not_assignee(cp, attempt.actor, self.directory is None)
        principal, via = found
        await self._check_person(cp, attempt, principal)
        return Admission(principal=principal, via=via, version_checked=version_checked)

    def _check_team(self, cp: Checkpoint, attempt: Attempt) -> None:
        if attempt.channel != "slack":
            return
        if self.team is not None and attempt.team != self.team:
            raise NotAllowed(
                "this request comes from another Slack workspace than the one Signoff is installed in",
                rule="wrong_team",
            )
        if cp.team is not None and attempt.team != cp.team:
            raise NotAllowed(
                "this request belongs to another Slack workspace than the one you clicked in",
                rule="wrong_team",
            )

    @staticmethod
    def _check_version(cp: Checkpoint, attempt: Attempt) -> bool:
        expected = attempt.expected_version
        if expected is None:
            return False
        if expected > cp.version:
            raise StaleVersion(
                f"version {expected} of this request never existed (it is at version {cp.version})",
                version=cp.version,
            )
        if expected < cp.content_version:
            who = ", ".join(cp.editors)
            by = f" (by {who})" if who else ""
            raise StaleVersion(
                f"the proposal was edited{by} after your copy was shown; "
                f"decide on the current one (version {cp.version})",
                version=cp.version,
            )
        return True

    @staticmethod
    def _check_policy(cp: Checkpoint, attempt: Attempt, now: datetime, config: HumanConfig | None) -> None:
        if attempt.resolved_by != "timeout":
            raise NotAllowed("only a person or a deadline decides a checkpoint", rule="not_a_person")
        if cp.due_at is None or cp.due_at > now:
            raise NotAllowed("the deadline of this checkpoint has not passed", rule="not_due")
        if attempt.action != "approve":
            return  # failing closed (a reject) is always allowed once the deadline passed
        step = step_at(config, cp.escalation_level) if config is not None else None
        if step is None or step.action != "auto_approve":
            raise NotAllowed(
                "this checkpoint's escalation does not approve at its deadline", rule="no_auto_approve"
            )

    async def is_requester(self, cp: Checkpoint, actor: str, principal: str) -> bool:
        """True when ``actor`` or the ``principal`` they decide for is the person who started the run."""
        return await self._among(cp.requester, [actor, principal])

    async def _check_person(self, cp: Checkpoint, attempt: Attempt, principal: str) -> None:
        actor, action = attempt.actor, attempt.action
        if (
            cp.kind in SELF_APPROVAL_KINDS
            and not cp.allow_self_approval
            and await self.is_requester(cp, actor, principal)
        ):
            raise NotAllowed(
                "you started this run, so you cannot decide its checkpoint "
                "(the workflow does not allow self-approval); ask an assignee",
                rule="self_approval",
            )
        on_behalf = f" ({principal}, whom you stand in for,)" if principal != actor else ""
        if cp.quorum > 1 and action == "approve" and await self._among(principal, cp.editors):
            raise NotAllowed(
                f"you{on_behalf} edited this payload, so you cannot approve your own edit; "
                f"{cp.quorum} other people must approve it",
                rule="own_edit",
            )
        if cp.quorum > 1 and await self._among(principal, cp.approvals):
            left = cp.quorum - len(cp.approvals)
            raise NotAllowed(
                f"you{on_behalf} already approved; {left} more approval(s) from others needed",
                rule="already_voted",
            )
        if (
            attempt.check_confirm
            and cp.confirm
            and action in {"approve", "edit"}
            and attempt.confirm != cp.confirm
        ):
            raise NotAllowed(f"type {cp.confirm} to confirm this irreversible action", rule="confirm_word")


def _not_assignee(cp: Checkpoint, actor: str, local: bool) -> NotAllowed:
    who = ", ".join(cp.assignees) or "nobody"
    channels = [a for a in cp.assignees if a.startswith(("channel:", "group:"))]
    if local and channels:
        return NotAllowed(
            f"only the assignees can decide this checkpoint ({who}); membership of "
            f"{', '.join(channels)} can only be checked through Slack",
            rule="not_assignee",
        )
    return NotAllowed(f"only the assignees can decide this checkpoint ({who})", rule="not_assignee")
