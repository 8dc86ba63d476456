"""``skill``: run a pinned version of a skill from the library through the ``SkillRunner``.

The skill's validated outputs are the step's ``data``; ``text`` is the output's ``text`` field
when the skill has one (e.g. pii-redact's redacted text), otherwise the outputs as JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from engine.errors import InvalidInput, SkillFailed
from engine.model import Deliverable, NodeSpec
from engine.nodes.base import Completed, LoadContext, NodeContext, NodeResult
from engine.nodes.code import step_workspace
from engine.ports import LLM, LLMRequest, LLMResponse
from engine.templates import render_value

__all__ = ["MeteredLLM", "SkillConfig", "SkillNode"]

_PINNED = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*@\d+\.\d+\.\d+$")
NO_RUNNER = (
    "no skill runner is configured: skill nodes need the skill library (SIGNOFF_SKILLS_DIR) "
    "and a working sandbox (bubblewrap, or SIGNOFF_SANDBOX=docker)"
)


class SkillConfig(BaseModel):
    """``skill: name@version`` and its inputs (``with``, every string may be a template)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    skill: str
    inputs: dict[str, Any] = Field(default_factory=dict, alias="with")


class SkillNode:
    """Runs a skill version pinned by the workflow; unknown or unpinned skills fail loading."""

    type_name: ClassVar[str] = "skill"
    config_model: ClassVar[type[BaseModel]] = SkillConfig
    template_fields: ClassVar[tuple[str, ...]] = ("with",)
    side_effects: ClassVar[bool] = True  # command skills receive the idempotency key

    @classmethod
    def check(cls, node: NodeSpec, ctx: LoadContext) -> list[tuple[str | None, str]]:
        """The reference must be pinned (``name@1.2.0``) and known to the configured runner."""
        config = node.config
        assert isinstance(config, SkillConfig)
        ref = config.skill
        if not _PINNED.match(ref):
            name = ref.partition("@")[0]
            return [("skill", f"skill {ref!r} is not pinned; use {name}@<version>, like {name}@1.0.0")]
        if ctx.skills is None:
            return [("skill", NO_RUNNER)]
        problem = ctx.skills.exists(ref)
        return [] if problem is None else [("skill", problem)]

    @classmethod
    async def execute(cls, ctx: NodeContext) -> NodeResult:
        """Render ``with``, run the skill in this step's workspace, return its outputs."""
        config = ctx.node.config
        assert isinstance(config, SkillConfig)
        runner = ctx.deps.skills
        if runner is None:
            raise SkillFailed(NO_RUNNER)
        if ctx.deps.workspace_root is None:
            raise SkillFailed("no workspace directory is configured for skill nodes (SIGNOFF_WORKSPACE_DIR)")
        inputs = render_value(ctx.compiled.get("with", {}), ctx.scope)
        workspace = step_workspace(ctx.deps.workspace_root, ctx.run.id, ctx.node.id)
        meter = None if ctx.deps.llm is None else MeteredLLM(ctx.deps.llm)
        try:
            outputs = await runner.run(
                config.skill, inputs, workspace=workspace, key=ctx.idempotency_key, llm=meter
            )
        except InvalidInput as exc:
            detail = "; ".join(f"{k or '(inputs)'}: {v}" for k, v in exc.errors.items())
            raise SkillFailed(f"{exc}: {detail}" if detail else str(exc)) from exc
        text = outputs.get("text")
        if not isinstance(text, str):
            text = json.dumps(outputs, ensure_ascii=False)
        used = meter if meter is not None and meter.calls else None  # a prompt skill called the model
        return Completed(
            output=Deliverable(text=text, data=outputs),
            input={"skill": config.skill, "with": inputs},
            input_tokens=used.input_tokens if used else None,
            output_tokens=used.output_tokens if used else None,
            cost_usd=used.cost_usd if used else None,
        )


class MeteredLLM:
    """An ``LLM`` that adds up the tokens and cost of the calls made through it (one per step)."""

    def __init__(self, llm: LLM) -> None:
        self._llm = llm
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Forward the call and count what it used."""
        response = await self._llm.complete(request)
        self.calls += 1
        self.input_tokens += response.input_tokens or 0
        self.output_tokens += response.output_tokens or 0
        self.cost_usd += response.cost_usd or 0.0
        return response
