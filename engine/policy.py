"""Checkpoint policy: who a checkpoint goes to, and who may decide it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import NotAllowed
from engine.model import Checkpoint
from engine.ports import Directory
from engine.roles import Role, parse_principal

__all__ = [
    "STRATEGIES",
    "assignee_principals",
    "card_targets",
    "check_assignee_spec",
    "eligible_users",
    "ensure_may_decide",
    "expand_principals",
    "is_admin",
]

STRATEGIES = ("round_robin", "least_busy")


def check_assignee_spec(spec: Any, roles: Mapping[str, Role]) -> list[str]:
    """Load-time check of an ``assignee`` value; returns problems (empty when fine)."""
    if spec is None:
        return []
    items = spec if isinstance(spec, list) else [spec]
    problems: list[str] = []
    for item in items:
        if isinstance(item, dict):
            problems.extend(_check_strategy(item, roles))
            continue
        if item == "requester":
            continue
        try:
            kind, name = parse_principal(str(item))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if kind == "role" and name not in roles:
            problems.append(f"unknown role '{name}' (define it in the roles file)")
    return problems


def _check_strategy(item: dict[str, Any], roles: Mapping[str, Role]) -> list[str]:
    if set(item) - {"strategy", "pool"}:
        return [f"unknown keys in assignee strategy: {sorted(set(item) - {'strategy', 'pool'})}"]
    if item.get("strategy") not in STRATEGIES:
        return [f"unknown assignee strategy {item.get('strategy')!r} (use round_robin or least_busy)"]
    pool = item.get("pool")
    if not isinstance(pool, list) or not pool:
        return ["an assignee strategy needs a non-empty 'pool' list"]
    return check_assignee_spec([p for p in pool if not isinstance(p, dict)], roles)


def assignee_principals(spec: Any, requester: str) -> list[str]:
    """Principals named by an ``assignee`` value (strategies are resolved by the engine)."""
    if spec is None:
        return []
    items = spec if isinstance(spec, list) else [spec]
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):
            out.extend(str(p) for p in item.get("pool", []))
        elif item == "requester":
            out.append(f"user:{requester}")
        else:
            out.append(str(item))
    return list(dict.fromkeys(out))


async def expand_principals(
    principals: list[str], roles: Mapping[str, Role], directory: Directory | None, team: str | None = None
) -> tuple[set[str], bool]:
    """Users behind principals; the flag is True when a ``channel:`` principal lets anyone there act.

    User groups are read in workspace ``team`` (a run's or checkpoint's), else the one at hand.
    """
    users: set[str] = set()
    open_channel = False
    for principal in principals:
        kind, name = parse_principal(principal)
        if kind == "user":
            users.add(name)
        elif kind == "email":
            continue  # not a Slack user: reached by email (engine.people links it to a Slack id)
        elif kind == "channel":
            open_channel = True
        elif kind == "group":
            if directory is not None:
                users.update(await directory.group_members(name, team))
        elif kind == "role" and name in roles:
            sub, chan = await expand_principals(roles[name].members, roles, directory, team)
            users |= sub
            open_channel = open_channel or chan
    return users, open_channel


async def eligible_users(
    cp: Checkpoint, roles: Mapping[str, Role], directory: Directory | None
) -> tuple[set[str], bool]:
    """Who may decide ``cp`` now (group membership is resolved at decision time)."""
    return await expand_principals(cp.assignees, roles, directory, cp.team)


def is_admin(actor: str, roles: Mapping[str, Role], aliases: frozenset[str] = frozenset()) -> bool:
    """True when a role marked ``admin: true`` lists the actor (as ``user:``), or one of
    ``aliases`` (every principal of the same person, ``engine.gate.Gate.aliases``)."""
    names = {f"user:{actor}", *aliases}
    return any(role.admin and names & set(role.members) for role in roles.values())


async def ensure_may_decide(
    cp: Checkpoint,
    actor: str,
    roles: Mapping[str, Role],
    directory: Directory | None,
    *,
    action: str = "approve",
) -> None:
    """Raise NotAllowed with a reason the person can act on."""
    if actor == cp.requester and not cp.allow_self_approval:
        raise NotAllowed(
            "you started this run, so you cannot decide its checkpoint "
            "(the workflow does not allow self-approval); ask an assignee"
        )
    if cp.quorum > 1 and actor in cp.editors and action == "approve":
        raise NotAllowed(
            "you edited this payload, so you cannot approve your own edit; "
            f"{cp.quorum} other people must approve it"
        )
    if cp.quorum > 1 and actor in cp.approvals:
        raise NotAllowed(
            f"you already approved; {cp.quorum - len(cp.approvals)} more approval(s) from others needed"
        )
    users, open_channel = await eligible_users(cp, roles, directory)
    if actor in users or open_channel:
        return
    who = ", ".join(cp.assignees) or "nobody"
    raise NotAllowed(f"only the assignees can decide this checkpoint ({who})")


def card_targets(assignees: list[str], delegations: Mapping[str, str]) -> list[str]:
    """Where a checkpoint's cards and reminders go: its assignees, a directly named delegator's
    card to their delegate instead, and the delegates of people reached through a role or group."""
    out = list(assignees)
    for delegate, delegator in delegations.items():
        direct, instead = f"user:{delegator}", f"user:{delegate}"
        if direct in out:
            out[out.index(direct)] = instead
        elif instead not in out:
            out.append(instead)
    return list(dict.fromkeys(out))
