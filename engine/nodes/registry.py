"""The one table of node kinds. Adding a node type is one line here."""

from __future__ import annotations

from collections.abc import Mapping

from engine.nodes.base import NodeKind
from engine.nodes.code import CodeNode
from engine.nodes.http import HttpNode
from engine.nodes.human import HumanNode
from engine.nodes.llm import LlmNode
from engine.nodes.notify import NotifyNode
from engine.nodes.set_node import SetNode
from engine.nodes.skill_node import SkillNode

__all__ = ["NODE_KINDS"]

NODE_KINDS: Mapping[str, type[NodeKind]] = {
    "set": SetNode,
    "human": HumanNode,
    "http": HttpNode,
    "notify": NotifyNode,
    "llm": LlmNode,
    "skill": SkillNode,
    "code": CodeNode,
}
