"""Agents: callers of the HTTP API that act with an API key bound to no person.

An agent's identity is ``api:<key id>``. It may ask (open checkpoints, start runs) and read;
it never decides (invariant 24): the decision gate refuses it whatever the checkpoint says.
"""

from __future__ import annotations

__all__ = ["AGENT_PREFIX", "agent_id", "is_agent"]

AGENT_PREFIX = "api:"


def agent_id(key_id: str) -> str:
    """The actor and requester name of the agent holding API key ``key_id``."""
    return f"{AGENT_PREFIX}{key_id}"


def is_agent(actor: str) -> bool:
    """True for an agent's identity (never a person's)."""
    return actor.startswith(AGENT_PREFIX)
