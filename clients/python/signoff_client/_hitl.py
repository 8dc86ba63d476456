"""LangChain's human-in-the-loop interrupts, answered through Signoff without changing the graph.

Two request shapes are recognised, and each is answered in its own response shape:

* ``HumanInterrupt`` (``langgraph.prebuilt`` / ``langchain.agents.interrupt``): a list of
  ``{"action_request": {"action", "args"}, "config": {"allow_accept", "allow_edit",
  "allow_respond", "allow_ignore"}, "description"}``, answered by a list of
  ``{"type": "accept" | "edit" | "response" | "ignore", "args": ...}``;
* ``HumanInTheLoopMiddleware`` (LangChain 1.x): ``{"action_requests": [{"name", "args",
  "description"}], "review_configs": [{"action_name", "allowed_decisions"}]}``, answered by
  ``{"decisions": [{"type": "approve"} | {"type": "edit", "edited_action": {"name", "args"}} |
  {"type": "reject", "message"}]}``.

Each action becomes one checkpoint: the action and its arguments are shown, the arguments are
what Approve passes on (editable when edits are allowed). A rejection, a timeout and a
cancellation never run the action: ``ignore`` (or ``response`` with the person's comment, when
allowed) and ``reject``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signoff_client._models import Decision

__all__ = ["Action", "HitlRequest", "parse_hitl"]


@dataclass(frozen=True)
class Action:
    """One action a person reviews."""

    name: str
    args: dict[str, Any]
    description: str
    accept: bool
    edit: bool
    respond: bool


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value.strip() else default


def _config(config: Any) -> tuple[bool, bool, bool]:
    """(accept, edit, respond) of a HumanInterrupt config."""
    c = config if isinstance(config, Mapping) else {}
    return bool(c.get("allow_accept", True)), bool(c.get("allow_edit")), bool(c.get("allow_respond"))


@dataclass(frozen=True)
class HitlRequest:
    """A recognised request: its actions, and which shape to answer in."""

    actions: list[Action]
    middleware: bool

    def options(self, action: Action) -> list[str]:
        """The Signoff options offered for one action (reject is always there: fail closed)."""
        chosen = ["approve"] if action.accept else []
        return [*chosen, "reject", *(["edit"] if action.edit and action.args else [])]

    def answer(self, decisions: list[Decision[Any]]) -> Any:
        """The resume value, in the request's own shape."""
        if self.middleware:
            return {"decisions": [self._decision(a, d) for a, d in zip(self.actions, decisions, strict=True)]}
        return [self._response(a, d) for a, d in zip(self.actions, decisions, strict=True)]

    @staticmethod
    def _response(action: Action, d: Decision[Any]) -> dict[str, Any]:
        if d.outcome == "approved":
            return {"type": "accept", "args": None}
        if d.outcome == "edited":
            return {"type": "edit", "args": {"action": action.name, "args": d.raw_data}}
        if d.outcome == "rejected" and action.respond and d.comment:
            return {"type": "response", "args": d.comment}
        return {"type": "ignore", "args": None}

    @staticmethod
    def _decision(action: Action, d: Decision[Any]) -> dict[str, Any]:
        if d.outcome == "approved":
            return {"type": "approve"}
        if d.outcome == "edited":
            return {"type": "edit", "edited_action": {"name": action.name, "args": d.raw_data}}
        reason = d.comment or f"not approved ({d.outcome})"
        return {"type": "reject", "message": reason}


def parse_hitl(value: Any) -> HitlRequest | None:
    """The HITL request an interrupt value holds, or None when it holds another shape."""
    if isinstance(value, Mapping) and isinstance(value.get("action_requests"), list):
        configs = {
            c.get("action_name"): c.get("allowed_decisions") or []
            for c in value.get("review_configs") or []
            if isinstance(c, Mapping)
        }
        actions = []
        for request in value["action_requests"]:
            if not isinstance(request, Mapping) or not isinstance(request.get("name"), str):
                return None
            allowed = configs.get(request["name"], ["approve", "edit", "reject"])
            args = dict(request.get("args") or {})
            description = _text(request.get("description"), f"Run {request['name']}?")
            actions.append(
                Action(request["name"], args, description, "approve" in allowed, "edit" in allowed, False)
            )
        return HitlRequest(actions, middleware=True) if actions else None
    if isinstance(value, list) and value and all(_is_human_interrupt(v) for v in value):
        actions = []
        for item in value:
            request = item["action_request"]
            accept, edit, respond = _config(item.get("config"))
            args = dict(request.get("args") or {})
            description = _text(item.get("description"), f"Run {request['action']}?")
            actions.append(Action(request["action"], args, description, accept, edit, respond))
        return HitlRequest(actions, middleware=False)
    return None


def _is_human_interrupt(item: Any) -> bool:
    request = item.get("action_request") if isinstance(item, Mapping) else None
    return isinstance(request, Mapping) and isinstance(request.get("action"), str)
