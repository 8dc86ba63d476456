"""``build_app``: the Bolt ``AsyncApp`` with every listener registered, no module globals."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.deps import SlackDeps
from bot.slack.listeners import checkpoints, commands, control, home, modals

__all__ = ["Authorizer", "build_app"]

log = logging.getLogger("signoff.slack")

# Slack retries an event for up to ~6 minutes (2 hours with delayed events); keep ids that long.
_EVENT_TTL_S = 2 * 3600
_EVENT_MAX = 50_000


class Authorizer:
    """The bot's identity from ``auth.test``, fetched once (at start-up) instead of before an ack."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.result: AuthorizeResult | None = None

    async def warm(self) -> AuthorizeResult:
        """Call ``auth.test`` now; raises ``SlackApiError`` on a bad token."""
        response = await self.client.auth_test()
        self.result = AuthorizeResult.from_auth_test_response(
            bot_token=self.client.token, auth_test_response=response
        )
        return self.result

    async def identity(self) -> AuthorizeResult:
        """The cached identity (fetched now if ``warm`` was not called)."""
        return self.result or await self.warm()


def _dedupe_events() -> Callable[..., Awaitable[BoltResponse | None]]:
    """Drop Events API redeliveries (same ``event_id``); Bolt has no built-in dedupe."""
    seen: dict[str, float] = {}

    async def dedupe(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            now = time.monotonic()
            if len(seen) > _EVENT_MAX:
                for key in [k for k, at in seen.items() if now - at > _EVENT_TTL_S]:
                    del seen[key]
            if event_id in seen:
                log.info("dropping redelivered event %s", event_id)
                return BoltResponse(status=200, body="")
            seen[str(event_id)] = now
        await next()
        return None

    return dedupe


async def _on_error(error: Exception, body: dict[str, Any], response: BoltResponse | None = None) -> None:
    if response is not None and response.status >= 500:
        # raised before any listener acked (Bolt itself choking on a signed but malformed payload):
        # a request we cannot handle, not a server failure worth a 500 or a redelivery
        response.status, response.body = 400, ""
        log.warning("Slack request not understood: %r", error, exc_info=error)
        return
    view = body.get("view")
    view = view if isinstance(view, dict) else {}
    log.error(
        "Slack listener failed (type=%s callback=%s): %r",
        body.get("type") or body.get("command"),
        view.get("callback_id"),
        error,
        exc_info=error,
    )


def build_app(deps: SlackDeps, *, signing_secret: str, authorizer: Authorizer) -> AsyncApp:
    """The Bolt app of this process.

    Args:
        deps: what the listeners use.
        signing_secret: verifies every HTTP request (5-minute replay window, 401 otherwise).
        authorizer: the bot identity; call ``authorizer.warm()`` at start-up.
    """

    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        return await authorizer.identity()

    app = AsyncApp(
        name="signoff",
        # Bolt copies this client per request and sets the token from ``authorize``.
        client=AsyncWebClient(base_url=deps.client.base_url),
        signing_secret=signing_secret,
        authorize=authorize,
        request_verification_enabled=True,
        process_before_response=False,
        logger=log,
    )
    app.middleware(_dedupe_events())
    app.error(_on_error)
    for module in (commands, checkpoints, modals, home, control):
        module.register(app, deps)
    return app
