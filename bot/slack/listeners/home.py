"""App Home: publish on ``app_home_opened``, page through it, and answer DMs with a pointer to help.

Events are acked by Bolt before the listener runs; publishing goes through the outbox.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot import messages
from bot.blocks.home import HOME_PAGE
from bot.slack.deps import SlackDeps
from bot.slack.listeners._common import Body, user_of

__all__ = ["register"]

_DM_HINT = f"I work through `{messages.COMMAND}`. Try `{messages.COMMAND} help`, or open my Home tab."


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Register the Home tab listeners and the DM listener."""

    async def home_opened(event: Body) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            await deps.publish_home([str(event["user"])])

    async def page(ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        value = str(action.get("value", "0"))
        await deps.publish_home([user_of(body)], page=int(value) if value.isdigit() else 0)

    async def direct_message(event: Body) -> None:
        # Only people writing to the bot in its DM get an answer; edits, bots and joins do not.
        if event.get("channel_type") == "im" and event.get("user") and not event.get("subtype"):
            await deps.reply(str(event["user"]), _DM_HINT)

    app.event("app_home_opened")(home_opened)
    app.action(HOME_PAGE)(page)
    app.event("message")(direct_message)
