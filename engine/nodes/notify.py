"""``notify``: post a message (to ``requester``, ``user:``, ``channel:`` or ``role:``) via the outbox.

The text is Slack markup: the author's own text as written, every interpolated value made inert
(``engine.templates.render_markup``), so a value cannot mention, link or format.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from engine.model import Deliverable, Delivery, NodeSpec
from engine.nodes.base import Completed, LoadContext, NodeContext, NodeResult
from engine.roles import parse_principal
from engine.templates import has_template, render_markup, render_value

__all__ = ["NotifyNode"]


class NotifyConfig(BaseModel):
    """Where and what to post."""

    model_config = ConfigDict(extra="forbid")

    to: str = "requester"
    text: str


class NotifyNode:
    """Queues a message in the outbox, sent after the step commits."""

    type_name: ClassVar[str] = "notify"
    config_model: ClassVar[type[BaseModel]] = NotifyConfig
    template_fields: ClassVar[tuple[str, ...]] = ("to", "text")
    side_effects: ClassVar[bool] = False  # the send itself happens from the outbox, exactly once
    instant: ClassVar[bool] = True  # no I/O: runs without a lease heartbeat

    @classmethod
    def check(cls, node: NodeSpec, ctx: LoadContext) -> list[tuple[str | None, str]]:
        """``to`` must be requester or a principal; roles must exist."""
        config = node.config
        assert isinstance(config, NotifyConfig)
        if config.to == "requester" or has_template(config.to):
            return []
        try:
            kind, name = parse_principal(config.to)
        except ValueError as exc:
            return [("to", str(exc).replace("assignee", "recipient"))]
        if kind == "role" and name not in ctx.roles:
            return [("to", f"unknown role '{name}' (define it in the roles file)")]
        return []

    @classmethod
    async def execute(cls, ctx: NodeContext) -> NodeResult:
        """Render the text and queue one delivery."""
        compiled = ctx.compiled
        # the text is the author's Slack markup; the data it interpolates is made inert
        text = render_markup(compiled["text"], ctx.scope)
        to = str(render_value(compiled.get("to", "requester"), ctx.scope))
        target = f"user:{ctx.run.requester}" if to == "requester" else to
        now = ctx.deps.clock.now()
        delivery = Delivery(
            id=ctx.deps.ids.new("dlv_"),
            run_id=ctx.run.id,
            kind="notify",
            target=target,
            payload={"text": text, "origin": ctx.run.origin, "node": ctx.node.id},
            next_attempt_at=now,
            created_at=now,
        )
        return Completed(output=Deliverable(text=text, data={"to": target}), deliveries=[delivery])
