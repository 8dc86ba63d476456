"""Slack user groups resolved to their members, with a short cache (``usergroups.users.list`` is Tier 2)."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack._errors import slack_error

__all__ = ["SlackDirectory"]

log = logging.getLogger("signoff.slack.directory")


class SlackDirectory:
    """Implements ``engine.ports.Directory`` with ``usergroups.users.list``.

    Args:
        client: the Web API client.
        ttl: seconds a group's member list is reused; membership is checked at decision
            time, so keep it short.
    """

    def __init__(self, client: AsyncWebClient, *, ttl: float = 60.0) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def group_members(self, group_id: str) -> list[str]:
        """User ids in the group; an unknown group or a failed call counts as nobody."""
        hit = self._cache.get(group_id)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return list(hit[1])
        try:
            response = await self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            # Failing closed: nobody from an unreadable group may decide, and the reason is logged.
            log.warning("usergroups.users.list %s failed: %s", group_id, slack_error(exc))
            return list(hit[1]) if hit is not None else []
        users = [str(u) for u in response.get("users") or []]
        self._cache[group_id] = (now, users)
        return list(users)
