"""Web API calls that post and update messages (private): DM channels are opened once and cached."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks._kit import MESSAGE_TEXT, clip


class Poster:
    """Thin wrapper over ``chat.*`` and ``conversations.open``; raises ``SlackApiError``."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._dms: dict[str, str] = {}

    async def dm_channel(self, user: str) -> str:
        """The ``D…`` id of the bot's DM with ``user`` (``chat.update`` needs it, not the user id)."""
        channel = self._dms.get(user)
        if channel is None:
            response = await self.client.conversations_open(users=user)
            channel = str(response["channel"]["id"])
            self._dms[user] = channel
        return channel

    async def message(self, kind: str, name: str, message: dict[str, Any]) -> tuple[str, str]:
        """Post to a user's DM (``kind`` user) or a channel; returns ``(channel, ts)``."""
        channel = await self.dm_channel(name) if kind == "user" else name
        response = await self.client.chat_postMessage(
            channel=channel, text=clip(message["text"], MESSAGE_TEXT), blocks=message.get("blocks")
        )
        return str(response["channel"]), str(response["ts"])

    async def thread(
        self,
        channel: str,
        thread_ts: str,
        text: str,
        *,
        broadcast: bool = False,
        blocks: list[dict[str, Any]] | None = None,
    ) -> tuple[str, str]:
        """Reply in a thread (also in the conversation with ``broadcast``); returns ``(channel, ts)``."""
        response = await self.client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=clip(text, MESSAGE_TEXT),
            reply_broadcast=broadcast,
            blocks=blocks,
        )
        return str(response["channel"]), str(response["ts"])

    async def update(self, channel: str, ts: str, message: dict[str, Any]) -> None:
        """Replace a posted message (``blocks`` always sent, so old buttons never survive)."""
        await self.client.chat_update(
            channel=channel, ts=ts, text=clip(message["text"], MESSAGE_TEXT), blocks=message.get("blocks", [])
        )

    async def ephemeral(self, channel: str, user: str, message: dict[str, Any]) -> None:
        """A message only ``user`` sees in ``channel``."""
        await self.client.chat_postEphemeral(
            channel=channel, user=user, text=clip(message["text"], MESSAGE_TEXT), blocks=message.get("blocks")
        )
