"""Which channel reaches a person (private): pure, so it is tested as a table."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHANNELS", "Reach", "choose"]

CHANNELS = ("slack", "email")


@dataclass(frozen=True)
class Reach:
    """How one person can be reached: a Slack (or local) user, an address, a preference."""

    slack: str | None
    email: str | None
    prefers: str | None = None


def choose(named_by: str, reach: Reach, allowed: list[str]) -> tuple[list[str], bool]:
    """The channels to try for one person, best first, and whether the node's ``channels``
    could not be followed (then every channel that reaches the person is tried).

    The first choice is the person's ``prefers``, else the channel of the principal that names
    them (``email:`` -> email, ``user:`` -> Slack); the node's ``channels`` (empty: all) limit it.
    """
    reachable = [c for c in CHANNELS if (reach.slack if c == "slack" else reach.email)]
    first = reach.prefers or ("email" if named_by == "email" else "slack")
    wanted = [c for c in dict.fromkeys([first, *CHANNELS]) if c in (allowed or CHANNELS)]
    order = [c for c in wanted if c in reachable]
    if not order and reachable:
        return reachable, True
    return order, False
