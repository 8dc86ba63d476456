"""Agents: callers of the HTTP API that act with an API key bound to no person.

An agent's identity is ``api:<key id>``. It may ask (open checkpoints, start runs) and read;
it never decides (invariant 24): the decision gate refuses it whatever the checkpoint says.
"""

from __future__ import annotations

from typing import Any

from engine.model import HumanConfig, Workflow

__all__ = ["AGENT_PREFIX", "agent_id", "asks_requester", "is_agent", "names_requester"]

AGENT_PREFIX = "api:"


def agent_id(key_id: str) -> str:
    """The actor and requester name of the agent holding API key ``key_id``."""
    return f"{AGENT_PREFIX}{key_id}"


def is_agent(actor: str) -> bool:
    """True for an agent's identity (never a person's)."""
    return actor.startswith(AGENT_PREFIX)


def names_requester(value: Any) -> bool:
    """True when an assignee spec (or a list or mapping of them) names the requester."""
    if isinstance(value, str):
        return value.strip() in {"requester", "user:requester"}
    if isinstance(value, dict):
        return any(names_requester(v) for v in value.values())
    if isinstance(value, list):
        return any(names_requester(v) for v in value)
    return False


def asks_requester(workflow: Workflow) -> list[str]:
    """The human nodes of ``workflow`` that ask the run's requester (who, for an agent, is nobody)."""
    found = []
    for node in workflow.nodes.values():
        config = node.config
        if not isinstance(config, HumanConfig):
            continue
        if names_requester([config.assignee, config.notify, config.escalation]) or (
            config.kind == "input" and config.assignee is None
        ):
            found.append(node.id)
    return found
