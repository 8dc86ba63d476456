"""Web API calls that post and update messages (private): DM channels are opened once and cached.

Posts name their outbox row in Slack message ``metadata`` (``event_type`` ``signoff_delivery``),
so a row sent again after a crash can find the message a previous attempt left (``find``).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks._kit import MESSAGE_TEXT, clip

DELIVERY_EVENT = "signoff_delivery"
# conversations.history page size: Slack serves non-Marketplace apps at most 15 messages a call
HISTORY_LIMIT = 15


def delivery_metadata(delivery_id: str | None) -> dict[str, Any] | None:
    """The message ``metadata`` that names the outbox row a post belongs to."""
    if not delivery_id:
        return None
    return {"event_type": DELIVERY_EVENT, "event_payload": {"delivery_id": delivery_id}}


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

    async def channel(self, kind: str, name: str) -> str:
        """Where a post to ``kind:name`` lands: the user's DM channel, or the channel itself."""
        return await self.dm_channel(name) if kind == "user" else name

    async def message(
        self, kind: str, name: str, message: dict[str, Any], *, delivery_id: str | None = None
    ) -> tuple[str, str]:
        """Post to a user's DM (``kind`` user) or a channel; returns ``(channel, ts)``."""
        channel = await self.channel(kind, name)
        response = await self.client.chat_postMessage(
            channel=channel,
            text=clip(message["text"], MESSAGE_TEXT),
            blocks=message.get("blocks"),
            metadata=delivery_metadata(delivery_id),
        )
        return str(response["channel"]), str(response["ts"])

    async def find(self, channel: str, delivery_id: str, oldest: float) -> str | None:
        """The ts of the newest message in ``channel`` since ``oldest`` (epoch seconds) that names
        ``delivery_id`` in its metadata, or None. One ``conversations.history`` page, newest first."""
        response = await self.client.conversations_history(
            channel=channel, oldest=f"{oldest:.6f}", limit=HISTORY_LIMIT, include_all_metadata=True
        )
        for found in response.get("messages") or []:
            metadata = found.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == DELIVERY_EVENT and payload.get("delivery_id") == delivery_id:
                return str(found["ts"])
        return None

    async def thread(
        self,
        channel: str,
        thread_ts: str,
        text: str,
        *,
        broadcast: bool = False,
        blocks: list[dict[str, Any]] | None = None,
        delivery_id: str | None = None,
    ) -> tuple[str, str]:
        """Reply in a thread (also in the conversation with ``broadcast``); returns ``(channel, ts)``."""
        response = await self.client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=clip(text, MESSAGE_TEXT),
            reply_broadcast=broadcast,
            blocks=blocks,
            metadata=delivery_metadata(delivery_id),
        )
        return str(response["channel"]), str(response["ts"])

    async def update(
        self, channel: str, ts: str, message: dict[str, Any], *, delivery_id: str | None = None
    ) -> None:
        """Replace a posted message (``blocks`` always sent, so old buttons never survive)."""
        await self.client.chat_update(
            channel=channel,
            ts=ts,
            text=clip(message["text"], MESSAGE_TEXT),
            blocks=message.get("blocks", []),
            metadata=delivery_metadata(delivery_id),
        )

    async def ephemeral(self, channel: str, user: str, message: dict[str, Any]) -> None:
        """A message only ``user`` sees in ``channel``."""
        await self.client.chat_postEphemeral(
            channel=channel, user=user, text=clip(message["text"], MESSAGE_TEXT), blocks=message.get("blocks")
        )
