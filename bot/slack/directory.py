"""Slack user groups and channels resolved to their members, with a short cache.

``usergroups.users.list`` is Tier 2 and ``conversations.members`` Tier 4; membership is checked
again at decision time, so the cache is kept short.
"""

from __future__ import annotations

import logging
import time

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack._errors import slack_error

__all__ = ["SlackDirectory"]

log = logging.getLogger("signoff.slack.directory")
_PAGE = 200
_MAX_PAGES = 50  # 10,000 members: beyond that a channel is not a way to name who may decide
# a refused call, a client-side failure (a bad token, a failed rotation), no connection, no answer
_UNREADABLE = (SlackClientError, aiohttp.ClientError, TimeoutError)


def _why(exc: BaseException) -> str:
    return slack_error(exc) if isinstance(exc, SlackApiError) else f"{type(exc).__name__}: {exc}"


class SlackDirectory:
    """Implements ``engine.ports.Directory`` with ``usergroups.users.list`` and ``conversations.members``.

    Args:
        client: the Web API client.
        ttl: seconds a group's member list is reused; membership is checked at decision
            time, so keep it short.
    """

    def __init__(self, client: AsyncWebClient, *, ttl: float = 60.0) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._channels: dict[str, tuple[float, list[str]]] = {}

    async def group_members(self, group_id: str, team: str | None = None) -> list[str]:
        """User ids in the group; an unknown group or a failed call counts as nobody (one
        workspace, its client's: ``team`` is for ``TeamDirectory``)."""
        hit = self._cache.get(group_id)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return list(hit[1])
        try:
            response = await self.client.usergroups_users_list(usergroup=group_id)
        except _UNREADABLE as exc:
            # Failing closed: nobody from an unreadable group may decide, and the reason is logged.
            log.warning("usergroups.users.list %s failed: %s", group_id, _why(exc))
            return list(hit[1]) if hit is not None else []
        users = [str(u) for u in response.get("users") or []]
        self._cache[group_id] = (now, users)
        return list(users)

    async def channel_members(self, channel_id: str) -> list[str]:
        """User ids in the channel (every page); an unreadable channel counts as nobody."""
        hit = self._channels.get(channel_id)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return list(hit[1])
        users: list[str] = []
        cursor = ""
        try:
            for _ in range(_MAX_PAGES):
                response = await self.client.conversations_members(
                    channel=channel_id, limit=_PAGE, cursor=cursor or None
                )
                users += [str(u) for u in response.get("members") or []]
                cursor = str((response.get("response_metadata") or {}).get("next_cursor") or "")
                if not cursor:
                    break
        except _UNREADABLE as exc:
            # failing closed: nobody in an unreadable channel may decide, and the reason is logged
            log.warning("conversations.members %s failed: %s", channel_id, _why(exc))
            return []
        self._channels[channel_id] = (now, users)
        return list(users)
