"""Starting a run from Slack: ask for missing inputs in a modal, or start it and say so (private)."""

from __future__ import annotations

from typing import Any

from bot import messages
from bot.blocks import run_inputs_modal
from bot.slack.deps import SlackDeps
from bot.slack.listeners._common import Body, form_fallback, open_view, team_of, user_of
from engine.errors import InvalidInput
from engine.model import Workflow

FOLLOW = " Follow it with `/signoff status {run}` or in the Signoff Home tab."


async def ask_inputs(
    deps: SlackDeps, body: Body, workflow: Workflow, values: dict[str, Any], fields: list[str] | None
) -> None:
    """Open the inputs modal for exactly ``fields`` (None: those missing or invalid)."""
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
    view = run_inputs_modal(
        workflow.id, workflow.title, workflow.inputs, values=values, only_fields=fields, channel_id=channel
    )
    fallback = form_fallback("run", workflow.id, workflow.title)
    await open_view(deps, body, view, fallback=fallback)


async def start_run(
    deps: SlackDeps, body: Body, workflow: Workflow, values: dict[str, Any], *, channel: str | None
) -> None:
    """Start the run (after the ack), tell the requester its id, then drive it to its first pause."""
    user = user_of(body)
    origin = {"channel": "slack", "user": user, **({"slack_channel": channel} if channel else {})}
    team = team_of(body)
    if deps.multi and team:
        origin["team"] = team  # the run, its checkpoints and their messages belong to this workspace
    engine = deps.container.engine
    try:
        run = await engine.start(workflow.id, values, requester=user, origin=origin)
    except InvalidInput as exc:
        await deps.reply(user, messages.invalid_input(exc.errors or {"": str(exc)}), channel=channel)
        return
    notice = messages.run_started(workflow.title, run.id)
    url = body.get("response_url")
    await deps.reply(
        user, notice.text + FOLLOW.format(run=run.id), response_url=url, channel=channel, run_id=run.id
    )
    await engine.drive(run.id)
