"""What the Slack listeners and the sender share, and the outbox rows they queue.

Every Slack call made after an ack goes through the outbox (docs/architecture.md §6): a
listener never posts itself, it queues a row here and wakes the outbox loop. The one
exception is ``views.open`` with a trigger id, which expires 3 s after the click.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks._kit import Block
from bot.messages import Notice
from bot.slack.install import TEAM, Workspaces
from bot.wiring import Container
from engine.model import Delivery
from engine.ports import AuditDraft, Directory

__all__ = ["HOME", "REPLY", "SlackDeps"]

REPLY = "slack.reply"
"""Outbox kind: a short answer to one person (response_url, ephemeral, or DM)."""
HOME = "slack.home"
"""Outbox kind: re-publish one person's App Home tab."""


@dataclass
class SlackDeps:
    """Dependencies of the Slack surface, passed explicitly to every ``register`` function.

    Attributes:
        container: the wired process (store, catalog, engine, clock, ids, roles).
        client: the Web API client (``SLACK_API_URL`` as base URL when set).
        directory: user group -> members, cached.
        wake: tells the outbox loop that rows are due now.
        web_url: base URL of the web console, for "Open in web" links (None hides them).
        workspaces: the client of each workspace (``web``); without it, ``client`` for all.
    """

    container: Container
    client: AsyncWebClient
    directory: Directory
    wake: Callable[[], None] = lambda: None
    web_url: str | None = None
    workspaces: Workspaces | None = None

    @property
    def multi(self) -> bool:
        """True in multi-workspace mode."""
        return self.workspaces is not None and self.workspaces.single is None

    async def web(self) -> AsyncWebClient:
        """The Web API client of the workspace at hand (``install.TEAM``).

        Raises:
            NotFound: multi-workspace mode, and that workspace has no installation.
        """
        return self.client if self.workspaces is None else await self.workspaces.client()

    def row(self, kind: str, user: str, payload: dict[str, Any], run_id: str | None) -> Delivery:
        """An outbox row of ``kind`` for one user, due now."""
        now = self.container.clock.now()
        team = TEAM.get()
        if self.multi and team and "team" not in payload:
            payload = {**payload, "team": team}  # sent later with that workspace's token
        return Delivery(
            id=self.container.ids.new("dlv_"),
            run_id=run_id,
            kind=kind,
            target=f"user:{user}",
            payload=payload,
            next_attempt_at=now,
            created_at=now,
        )

    async def queue(self, rows: list[Delivery], audit: list[AuditDraft] | None = None) -> None:
        """Store outbox rows (with their audit events, in one transaction) and wake the sender."""
        await self.container.store.add_deliveries(rows, audit or [])
        self.wake()

    async def reply(
        self,
        user: str,
        notice: Notice | str,
        *,
        response_url: str | None = None,
        channel: str | None = None,
        blocks: list[Block] | None = None,
        run_id: str | None = None,
    ) -> None:
        """Tell ``user`` something only they see: via ``response_url``, an ephemeral, or a DM."""
        text = notice.text if isinstance(notice, Notice) else notice
        payload: dict[str, Any] = {"text": text}
        if isinstance(notice, Notice) and notice.code is not None:
            payload["code"] = notice.code.value
        if response_url:
            payload["response_url"] = response_url
        if channel:
            payload["channel"] = channel
        if blocks:
            payload["blocks"] = blocks
        await self.queue([self.row(REPLY, user, payload, run_id)])

    async def publish_home(self, users: list[str], page: int = 0) -> None:
        """Queue a Home tab refresh for each user."""
        rows = [self.row(HOME, u, {"page": page}, None) for u in dict.fromkeys(users) if u]
        if rows:
            await self.queue(rows)

    def audit(self, kind: str, actor: str, payload: dict[str, Any], **ids: str | None) -> AuditDraft:
        """An audit draft from the Slack surface (channel ``slack``)."""
        return AuditDraft(
            at=self.container.clock.now(), actor=actor, channel="slack", kind=kind, payload=payload, **ids
        )
