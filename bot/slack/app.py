"""``build_app``: the Bolt ``AsyncApp`` with every listener registered, no module globals."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.deps import SlackDeps
from bot.slack.install import BOT_SCOPES, ROTATE_BEFORE_MIN, TEAM, DatabaseInstallations, SignedStates
from bot.slack.listeners import checkpoints, commands, control, home, modals
from bot.slack.listeners._common import team_of

__all__ = ["INSTALL_PATH", "REDIRECT_PATH", "Authorizer", "Installs", "build_app"]

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"

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


class Installs:
    """What multi-workspace mode needs to build the app: the OAuth v2 install flow's settings.

    Args:
        store: the installations, in Signoff's database.
        client_id: ``SLACK_CLIENT_ID``; ``client_secret``: ``SLACK_CLIENT_SECRET``.
        token_keys: ``SIGNOFF_TOKEN_KEY`` (signs the OAuth state too).
        redirect_uri: ``SIGNOFF_PUBLIC_URL`` + ``/slack/oauth_redirect`` (None: the app's own).
        base_url: the Web API (``SLACK_API_URL``), for the code exchange and rotation.
    """

    def __init__(
        self,
        store: DatabaseInstallations,
        *,
        client_id: str,
        client_secret: str,
        token_keys: str,
        redirect_uri: str | None,
        base_url: str,
    ) -> None:
        self.store = store
        self.settings = AsyncOAuthSettings(
            client_id=client_id,
            client_secret=client_secret,
            scopes=list(BOT_SCOPES),
            redirect_uri=redirect_uri,
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            installation_store=store,
            installation_store_bot_only=True,
            token_rotation_expiration_minutes=ROTATE_BEFORE_MIN,
            state_store=SignedStates(token_keys),
            logger=log,
        )
        # bot-only, so a rotated token is stored with ``async_save_bot``; auth.test once per token
        self.authorize = AsyncInstallationStoreAuthorize(
            logger=log,
            installation_store=store,
            client_id=client_id,
            client_secret=client_secret,
            token_rotation_expiration_minutes=ROTATE_BEFORE_MIN,
            bot_only=True,
            cache_enabled=True,
            client=AsyncWebClient(base_url=base_url),
        )


async def _bind_team(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
    """The request's workspace is the work's: its listeners' Web API calls and queued rows use it."""
    TEAM.set(team_of(body) or _event_team(body))
    await next()
    return None


def _event_team(body: dict[str, Any]) -> str | None:
    """Events API envelopes name the workspace in ``team_id`` (org-wide: ``authorizations``)."""
    auths = body.get("authorizations")
    if isinstance(auths, list) and auths and isinstance(auths[0], dict) and auths[0].get("team_id"):
        return str(auths[0]["team_id"])
    return None


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


def build_app(
    deps: SlackDeps,
    *,
    signing_secret: str,
    authorizer: Authorizer | None = None,
    installs: Installs | None = None,
) -> AsyncApp:
    """The Bolt app of this process.

    Args:
        deps: what the listeners use.
        signing_secret: verifies every HTTP request (5-minute replay window, 401 otherwise).
        authorizer: single-workspace mode: the bot identity; call ``authorizer.warm()`` at start-up.
        installs: multi-workspace mode: the install flow, and the store every request is
            authorized from (``app_uninstalled`` and ``tokens_revoked`` delete an installation).
    """
    if installs is not None:
        app = AsyncApp(
            name="signoff",
            client=AsyncWebClient(base_url=deps.client.base_url),
            signing_secret=signing_secret,
            authorize=installs.authorize,  # type: ignore[arg-type]  # Bolt takes AsyncAuthorize objects too
            oauth_settings=installs.settings,
            installation_store=installs.store,
            installation_store_bot_only=True,
            request_verification_enabled=True,
            process_before_response=False,
            logger=log,
        )
        app.enable_token_revocation_listeners()
    elif authorizer is not None:
        known = authorizer

        async def authorize(
            enterprise_id: str | None, team_id: str | None, user_id: str | None
        ) -> AuthorizeResult:
            return await known.identity()

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
    else:
        raise ValueError("build_app needs an authorizer (one workspace) or installs (many)")
    app.middleware(_dedupe_events())
    app.middleware(_bind_team)
    app.error(_on_error)
    for module in (commands, checkpoints, modals, home, control):
        module.register(app, deps)
    return app
