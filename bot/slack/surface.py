"""Everything ``signoff serve`` needs for Slack: client, directory, sender, Bolt app, transports.

HTTP mode mounts ``POST /slack/events`` on the process's own aiohttp application (the same
server as the web console). Socket Mode connects out with the app-level token instead.

Single-workspace mode (``SLACK_BOT_TOKEN``) has one client. Multi-workspace mode (no bot token,
``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET``) also mounts ``GET /slack/install`` and
``GET /slack/oauth_redirect`` (Bolt's OAuth v2 flow), and every Web API call uses the token of
the workspace the work belongs to (``bot.slack.install``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError, Settings
from bot.mail import install as install_mail
from bot.slack.app import INSTALL_PATH, REDIRECT_PATH, Authorizer, Installs, build_app
from bot.slack.deps import SlackDeps
from bot.slack.directory import SlackDirectory
from bot.slack.install import DatabaseInstallations, TeamDirectory, TokenCipher, Workspaces
from bot.slack.sender import SlackSender
from bot.wiring import Container, outbox_claim
from engine.outbox import Outbox
from engine.ports import Directory

__all__ = ["EVENTS_PATH", "INSTALL_PATH", "REDIRECT_PATH", "SlackSurface"]

EVENTS_PATH = "/slack/events"
log = logging.getLogger("signoff.slack")


def _api_url(settings: Settings) -> str:
    url = settings.slack_api_url or AsyncWebClient.BASE_URL
    return url if url.endswith("/") else url + "/"


class SlackSurface:
    """The Slack side of one process, built on an existing container.

    Building it makes the container send its outbox through Slack and resolve user groups
    through Slack at decision time.

    Args:
        container: the wired process (built without a sender).
        settings: needs ``slack_bot_token`` and ``slack_signing_secret``.
        wake: called when rows were queued, so the outbox loop sends them now.
    """

    def __init__(self, container: Container, settings: Settings, *, wake: Callable[[], None]) -> None:
        secret = settings.slack_signing_secret
        if not (secret and (settings.slack_bot_token or settings.slack_multi)):
            raise ConfigError(
                "Slack needs SLACK_SIGNING_SECRET with SLACK_BOT_TOKEN (one workspace), or with "
                "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (workspaces install Signoff)"
            )
        self.settings = settings
        self.installs: Installs | None = None
        self.authorizer: Authorizer | None = None
        base = _api_url(settings)
        directory: Directory
        if settings.slack_multi:
            self.client = AsyncWebClient(base_url=base)
            self.installs, self.workspaces = _multi(container, settings, base)
            directory = TeamDirectory(self.workspaces)
        else:
            self.client = AsyncWebClient(token=settings.slack_bot_token, base_url=base)
            self.workspaces = Workspaces(base, single=self.client)
            directory = SlackDirectory(self.client)
            self.authorizer = Authorizer(self.client)
        self.directory = directory
        self.deps = SlackDeps(
            container=container,
            client=self.client,
            directory=directory,
            wake=wake,
            workspaces=self.workspaces,
        )
        self.sender = SlackSender(self.deps)
        self.app: AsyncApp = build_app(
            self.deps, signing_secret=secret, authorizer=self.authorizer, installs=self.installs
        )
        container.engine.deps.directory = directory
        container.outbox = Outbox(
            container.store,
            self.sender,
            container.clock,
            claim_ttl=outbox_claim(settings),
            observers=container.engine.observers,
        )
        install_mail(container, wake=wake)  # with SMTP: people are reached by email too
        self._socket: AsyncSocketModeHandler | None = None

    @property
    def socket_mode(self) -> bool:
        """True when ``SLACK_APP_TOKEN`` is set."""
        return bool(self.settings.slack_app_token)

    def mount(self, app: web.Application) -> None:
        """Add ``POST /slack/events`` (signature verified by Bolt) to ``app``, and in
        multi-workspace mode the install flow's ``GET /slack/install`` and ``/slack/oauth_redirect``."""
        app.router.add_post(EVENTS_PATH, self.handle, name="slack.events")
        if self.installs is not None:
            self.mount_install(app)

    def mount_install(self, app: web.Application) -> None:
        """Add the install flow's routes (Socket Mode needs them too: installing is a browser's visit)."""
        app.router.add_get(INSTALL_PATH, self.install, name="slack.install")
        app.router.add_get(REDIRECT_PATH, self.install, name="slack.oauth_redirect")

    async def install(self, request: web.Request) -> web.Response:
        """Bolt's OAuth v2 flow: the install page (a fresh signed state, bound to this browser by a
        cookie), then Slack's redirect (state checked, code exchanged, installation stored)."""
        flow = self.app.oauth_flow
        if flow is None:
            raise web.HTTPNotFound()
        bolt_request = await to_bolt_request(request)
        if request.path == INSTALL_PATH:
            response = await flow.handle_installation(bolt_request)
        else:
            response = await flow.handle_callback(bolt_request)
        return await to_aiohttp_response(response)

    async def handle(self, request: web.Request) -> web.Response:
        """One HTTP request from Slack through Bolt (401 on a bad or stale signature)."""
        began = time.perf_counter()
        try:
            response = await self.app.async_dispatch(await to_bolt_request(request))
        except Exception as exc:  # Bolt parsing a malformed payload outside its own error handling
            log.warning("Slack request not understood: %r", exc, exc_info=exc)
            return web.Response(status=400)
        self.acked("http", time.perf_counter() - began)  # Bolt answers once the listener acked
        return await to_aiohttp_response(response)

    def acked(self, mode: str, seconds: float) -> None:
        """Record how long a Slack request took to answer (Slack allows 3 s)."""
        metrics = self.deps.container.metrics
        if metrics is not None:
            metrics.slack_acked(mode, seconds)

    async def start(self) -> None:
        """Check the bot token (``auth.test``; one workspace) and, in Socket Mode, connect.

        Raises:
            ConfigError: Slack refused the token, or could not be reached.
        """
        if self.authorizer is not None:
            await self._start_single(self.authorizer)
        else:
            store = self.deps.container.installations
            count = len(await store.list_installations()) if store is not None else 0
            log.info("Slack: installed in %d workspace(s); another installs at %s", count, INSTALL_PATH)
        if self.settings.slack_app_token:
            web_client = AsyncWebClient(base_url=_api_url(self.settings))
            self._socket = _TimedSocketHandler(
                self.app, app_token=self.settings.slack_app_token, web_client=web_client
            )
            self._socket.surface = self
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("Slack: Socket Mode connected")

    async def _start_single(self, authorizer: Authorizer) -> None:
        try:
            identity = await authorizer.warm()
        except (SlackApiError, SlackClientError, OSError) as exc:
            raise ConfigError(f"SLACK_BOT_TOKEN was not accepted by Slack: {exc}") from exc
        log.info("Slack: bot %s in team %s", identity.bot_user_id, identity.team_id)
        # the decision gate refuses payloads from any other workspace
        self.deps.container.engine.gate.team = identity.team_id

    async def close(self) -> None:
        """Disconnect Socket Mode (HTTP mode has nothing to close)."""
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None


def _multi(container: Container, settings: Settings, base: str) -> tuple[Installs, Workspaces]:
    """The install flow and the per-workspace clients of multi-workspace mode."""
    if container.installations is None or settings.token_key is None:
        raise ConfigError(
            "the Slack install flow needs a database (SIGNOFF_DATABASE_URL) and SIGNOFF_TOKEN_KEY"
        )
    client_id = str(settings.slack_client_id)
    secret = settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else ""
    keys = settings.token_key.get_secret_value()
    store = DatabaseInstallations(
        container.installations, TokenCipher(keys), container.clock, client_id, settings.slack_teams
    )
    public = settings.public_url.rstrip("/") if settings.public_url else None
    installs = Installs(
        store,
        client_id=client_id,
        client_secret=secret,
        token_keys=keys,
        redirect_uri=public + REDIRECT_PATH if public else None,
        base_url=base,
    )
    workspaces = Workspaces(base, installations=store, client_id=client_id, client_secret=secret)
    return installs, workspaces


class _TimedSocketHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, timing each request until its acknowledgement is sent."""

    surface: SlackSurface | None = None

    # the client type is narrowed exactly as in Bolt's own override
    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        began = time.perf_counter()
        await super().handle(client, req)
        if self.surface is not None:
            self.surface.acked("socket", time.perf_counter() - began)
