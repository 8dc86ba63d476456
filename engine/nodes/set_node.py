"""``set``: compute data (and optionally text) from templates."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from engine.model import Deliverable, NodeSpec
from engine.nodes.base import Completed, LoadContext, NodeContext, NodeResult
from engine.templates import render_value

__all__ = ["SetNode"]


class SetConfig(BaseModel):
    """``data``: field -> template or value; ``text``: optional template."""

    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = Field(default_factory=dict)
    text: str | None = None


class SetNode:
    """Computes a deliverable from templates; no side effects."""

    type_name: ClassVar[str] = "set"
    config_model: ClassVar[type[BaseModel]] = SetConfig
    template_fields: ClassVar[tuple[str, ...]] = ("data", "text")
    side_effects: ClassVar[bool] = False
    instant: ClassVar[bool] = True  # no I/O: runs without a lease heartbeat

    @classmethod
    def check(cls, node: NodeSpec, ctx: LoadContext) -> list[tuple[str | None, str]]:
        """Nothing beyond the config model."""
        return []

    @classmethod
    async def execute(cls, ctx: NodeContext) -> NodeResult:
        """Render ``data`` and ``text``."""
        compiled = ctx.compiled
        data = render_value(compiled.get("data", {}), ctx.scope)
        text = compiled.get("text")
        rendered_text = "" if text is None else str(render_value(text, ctx.scope))
        return Completed(output=Deliverable(text=rendered_text, data=data))
