"""One outbox row per person behind a role or user group (private), ``email:`` members included."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.model import Delivery
from engine.outbox import same_message
from engine.policy import expand_principals
from engine.roles import Role, parse_principal

if TYPE_CHECKING:
    from bot.wiring import Container

__all__ = ["per_person"]


async def per_person(
    c: Container, delivery: Delivery, related: list[Delivery], team: str | None = None
) -> list[Delivery]:
    """The rows that replace ``delivery`` (to a role or group): one per person not yet sent this
    very message; a member linked to a Slack user who is also a member gets one row. User groups
    are read in workspace ``team`` (the checkpoint's)."""
    users, _ = await expand_principals([delivery.target], c.roles, c.engine.deps.directory, team)
    targets = [f"user:{u}" for u in sorted(users)]
    for member in _email_members(delivery.target, c.roles, set()):
        person = await c.people.find_person(member) if c.people is not None else None
        if person is None or not set(person.principals) & set(targets):
            targets.append(member)
    have = {d.target for d in related if same_message(delivery, d)}
    now = c.clock.now()
    return [
        delivery.model_copy(
            update={
                "id": c.ids.new("dlv_"),
                "target": target,
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
                "error": None,
            }
        )
        for target in dict.fromkeys(targets)
        if target not in have
    ]


def _email_members(principal: str, roles: dict[str, Role], seen: set[str]) -> list[str]:
    """The ``email:`` members behind a role (recursively through roles it names)."""
    kind, name = parse_principal(principal)
    if kind == "email":
        return [f"email:{name}"]
    if kind != "role" or name in seen or name not in roles:
        return []
    seen.add(name)
    return [m for member in roles[name].members for m in _email_members(member, roles, seen)]
