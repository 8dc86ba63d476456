"""Adapters for ``llm`` and ``skill`` nodes: the Anthropic client, the skill library, sandboxes.

Names are imported on first use, so that importing the skill registry does not load the
Anthropic SDK (or the docker SDK) in processes that never call a model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skills.llm import PRICES, AnthropicLLM
    from skills.registry import FixtureResult, RegistryRunner, Skill, SkillRegistry, run_skill, test_skill
    from skills.sandbox import choose_sandbox

__all__ = [
    "PRICES",
    "AnthropicLLM",
    "FixtureResult",
    "RegistryRunner",
    "Skill",
    "SkillRegistry",
    "choose_sandbox",
    "run_skill",
    "test_skill",
]

_HOMES = {
    "PRICES": "skills.llm",
    "AnthropicLLM": "skills.llm",
    "FixtureResult": "skills.registry",
    "RegistryRunner": "skills.registry",
    "Skill": "skills.registry",
    "SkillRegistry": "skills.registry",
    "run_skill": "skills.registry",
    "test_skill": "skills.registry",
    "choose_sandbox": "skills.sandbox",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'skills' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
