"""Multi-workspace Slack: the OAuth v2 install flow's stores, and which token speaks for which team.

With ``SLACK_CLIENT_ID``, ``SLACK_CLIENT_SECRET`` and ``SLACK_SIGNING_SECRET`` (and no
``SLACK_BOT_TOKEN``) workspaces install Signoff at ``/slack/install``. Bolt runs the flow; this
module gives it:

* ``DatabaseInstallations``: Bolt's ``AsyncInstallationStore`` on Signoff's own database
  (``engine.installations``), every token encrypted with ``SIGNOFF_TOKEN_KEY`` (``TokenCipher``)
  before it reaches the store, and an audit event for each install, rotation and removal;
* ``SignedStates``: the OAuth ``state``, signed and timed (any replica can check it; Bolt also
  binds it to the browser with a cookie);
* ``Workspaces``: the Web API client of a team (the one ``SLACK_BOT_TOKEN`` client in
  single-workspace mode), rotating a token that is about to expire with its refresh token.

``TEAM`` is the workspace of the work at hand: set from the payload of each Slack request and,
while the outbox sends a row, from the row's checkpoint or run, so every Web API call of that
work is made with that workspace's token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from logging import Logger
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from slack_sdk.errors import SlackApiError, SlackClientError, SlackTokenRotationError
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError
from bot.slack.directory import SlackDirectory
from engine.errors import NotAllowed, NotFound
from engine.installations import InstallationStore, SlackInstallation
from engine.ports import AuditDraft, Clock

__all__ = [
    "BOT_SCOPES",
    "TEAM",
    "DatabaseInstallations",
    "SignedStates",
    "TeamDirectory",
    "TokenCipher",
    "Workspaces",
    "in_workspace",
]

log = logging.getLogger("signoff.slack.install")

TEAM: ContextVar[str | None] = ContextVar("signoff_slack_team", default=None)
"""The Slack workspace of the request or outbox row being handled (None: not known)."""


def in_workspace(team: str | None) -> bool:
    """True when something of workspace ``team`` (a run's, a checkpoint's) may be shown or acted on
    in the workspace at hand: the same one, or either of them unknown (a run started outside
    Slack, single-workspace mode)."""
    current = TEAM.get()
    return team is None or current is None or team == current


BOT_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "im:history",
    "channels:history",
    "groups:history",
    "users:read",
    "usergroups:read",
    "channels:read",
    "groups:read",
)
"""The bot scopes an install asks for: those of manifest.yml (a test keeps them equal)."""

# a token is rotated when it expires within this many minutes (Slack's tokens live 12 hours)
ROTATE_BEFORE_MIN = 120


class TokenCipher:
    """Encrypts tokens at rest with ``SIGNOFF_TOKEN_KEY`` (comma-separated Fernet keys: the
    first encrypts, every one decrypts, so a key can be replaced without losing installs)."""

    def __init__(self, keys: str) -> None:
        try:
            self._fernet = MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])
        except ValueError as exc:
            raise ConfigError(f"SIGNOFF_TOKEN_KEY: {exc}") from None

    def seal(self, token: str | None) -> str | None:
        """The ciphertext of ``token`` (None stays None)."""
        return None if token is None else self._fernet.encrypt(token.encode()).decode()

    def open(self, sealed: str | None, team: str) -> str | None:
        """The token ``sealed`` holds.

        Raises:
            ConfigError: no key of ``SIGNOFF_TOKEN_KEY`` opens it (the key was replaced without
                keeping the old one after it).
        """
        if sealed is None:
            return None
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ConfigError(
                f"SIGNOFF_TOKEN_KEY does not open the stored tokens of Slack workspace {team}: "
                "keep the old key after the new one (comma-separated), or install Signoff there again"
            ) from None


def _when(epoch: int | float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(int(epoch), UTC)


def _epoch(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def _scopes(value: Any) -> list[str]:
    if isinstance(value, str):
        return [s for s in value.split(",") if s]
    return [str(s) for s in value or []]


def _key(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None) -> str | None:
    """Where an installation is kept: its team, or its enterprise for an org-wide install."""
    return enterprise_id if is_enterprise_install and enterprise_id else team_id


class DatabaseInstallations(AsyncInstallationStore):
    """Bolt's installation store on Signoff's database: one installation per workspace.

    Args:
        store: the installation port (the SQL store).
        cipher: encrypts tokens before they are stored.
        clock: install and rotation times.
        client_id: the Slack app this store serves.
    """

    def __init__(
        self,
        store: InstallationStore,
        cipher: TokenCipher,
        clock: Clock,
        client_id: str,
        allowed: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.cipher = cipher
        self.clock = clock
        self.client_id = client_id
        self.allowed = allowed  # SIGNOFF_SLACK_TEAMS: the workspaces that may install

    @property
    def logger(self) -> Logger:
        """Bolt logs through this."""
        return log

    def _audit(self, kind: str, actor: str, team: str, **payload: Any) -> AuditDraft:
        return AuditDraft(
            at=self.clock.now(), actor=actor, channel="slack", kind=kind, payload={"team": team, **payload}
        )

    async def async_save(self, installation: Installation) -> None:
        """Store an install, tokens encrypted, with an audit event (installing again replaces it;
        rotated tokens come through ``async_save_bot``: the app authorizes bot-only)."""
        i = installation
        team = _key(i.enterprise_id, i.team_id, i.is_enterprise_install)
        if team is None:
            raise NotFound("Slack sent an installation that names no workspace")
        if team not in self.allowed:
            # a stranger's workspace: nothing is stored, so none of its members may sign in or act
            log.warning("Slack install refused: workspace %s is not in SIGNOFF_SLACK_TEAMS", team)
            raise NotAllowed(
                f"workspace {team} may not install Signoff here (SIGNOFF_SLACK_TEAMS)", rule="slack_team"
            )
        now = self.clock.now()
        row = SlackInstallation(
            team_id=team,
            team_name=i.team_name,
            enterprise_id=i.enterprise_id,
            enterprise_name=i.enterprise_name,
            is_enterprise_install=bool(i.is_enterprise_install),
            app_id=i.app_id,
            bot_id=i.bot_id,
            bot_user_id=i.bot_user_id,
            bot_token=self.cipher.seal(i.bot_token),
            bot_refresh_token=self.cipher.seal(i.bot_refresh_token),
            bot_token_expires_at=_when(i.bot_token_expires_at),
            bot_scopes=_scopes(i.bot_scopes),
            user_id=i.user_id,
            user_token=self.cipher.seal(i.user_token),
            user_refresh_token=self.cipher.seal(i.user_refresh_token),
            user_token_expires_at=_when(i.user_token_expires_at),
            user_scopes=_scopes(i.user_scopes),
            installed_at=now,
            updated_at=now,
        )
        audit = self._audit("slack.installed", i.user_id or "slack", team, scopes=row.bot_scopes)
        await self.store.save_installation(row, [audit])
        log.info("Slack: %s for workspace %s (%s)", audit.kind, team, i.team_name or "")

    async def async_save_bot(self, bot: Bot) -> None:
        """Store a bot's rotated token (the rest of its installation is kept)."""
        team = _key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        known = None if team is None else await self.store.get_installation(team)
        if known is None or team is None:
            return
        row = known.model_copy(
            update={
                "bot_token": self.cipher.seal(bot.bot_token),
                "bot_refresh_token": self.cipher.seal(bot.bot_refresh_token),
                "bot_token_expires_at": _when(bot.bot_token_expires_at),
                "updated_at": self.clock.now(),
            }
        )
        await self.store.save_installation(row, [self._audit("slack.tokens_rotated", "engine", team)])

    async def _find(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> SlackInstallation | None:
        team = _key(enterprise_id, team_id, is_enterprise_install)
        return None if team is None else await self.store.get_installation(team)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The workspace's installation, tokens decrypted."""
        row = await self._find(enterprise_id, team_id, is_enterprise_install)
        if row is None:
            return None
        if user_id is not None and user_id != row.user_id:
            return None  # one installation per workspace: its installer's user token only
        seal = self.cipher.open
        return Installation(
            app_id=row.app_id,
            enterprise_id=row.enterprise_id,
            enterprise_name=row.enterprise_name,
            team_id=None if row.is_enterprise_install else row.team_id,
            team_name=row.team_name,
            bot_token=seal(row.bot_token, row.team_id),
            bot_id=row.bot_id,
            bot_user_id=row.bot_user_id,
            bot_scopes=row.bot_scopes,
            bot_refresh_token=seal(row.bot_refresh_token, row.team_id),
            bot_token_expires_at=_epoch(row.bot_token_expires_at),
            user_id=row.user_id or "",
            user_token=seal(row.user_token, row.team_id),
            user_scopes=row.user_scopes,
            user_refresh_token=seal(row.user_refresh_token, row.team_id),
            user_token_expires_at=_epoch(row.user_token_expires_at),
            is_enterprise_install=row.is_enterprise_install,
            installed_at=row.installed_at.timestamp(),
        )

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        """The workspace's bot, token decrypted."""
        found = await self.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        return None if found is None else found.to_bot()

    async def async_delete_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> None:
        """The bot's tokens were revoked: the installation is deleted."""
        await self._delete(_key(enterprise_id, team_id, is_enterprise_install) or team_id, "tokens_revoked")

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        """A user token was revoked (its fields are cleared), or the installation is removed."""
        team = _key(enterprise_id, team_id, team_id is None)
        row = None if team is None else await self.store.get_installation(team)
        if row is None or team is None:
            return
        if user_id is None:
            await self._delete(team, "removed")
            return
        if user_id == row.user_id and row.user_token is not None:
            cleared = row.model_copy(
                update={
                    "user_token": None,
                    "user_refresh_token": None,
                    "user_token_expires_at": None,
                    "updated_at": self.clock.now(),
                }
            )
            audit = self._audit("slack.user_token_revoked", "slack", team, user=user_id)
            await self.store.save_installation(cleared, [audit])

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """The app was uninstalled: the installation is deleted."""
        await self._delete(_key(enterprise_id, team_id, team_id is None), "app_uninstalled")

    async def _delete(self, team: str | None, why: str) -> None:
        if team is None:
            return
        gone = await self.store.delete_installation(
            team, [self._audit("slack.uninstalled", "slack", team, reason=why)]
        )
        if gone:
            log.info("Slack: workspace %s removed (%s)", team, why)


class SignedStates(AsyncOAuthStateStore):
    """The OAuth ``state``: a nonce and its issue time, signed with a key derived from
    ``SIGNOFF_TOKEN_KEY``, so whichever replica gets the redirect can check it."""

    def __init__(self, keys: str, *, ttl_s: int = 600) -> None:
        first = keys.split(",")[0].strip().encode()
        self._key = hashlib.sha256(b"signoff-slack-oauth-state\x00" + first).digest()
        self.ttl_s = ttl_s

    @property
    def logger(self) -> Logger:
        """Bolt logs through this."""
        return log

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        """A new state."""
        body = f"{int(time.time())}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign(body)}"

    async def async_consume(self, state: str) -> bool:
        """True for a state this deployment issued within ``ttl_s`` seconds."""
        body, _, signature = state.rpartition(".")
        issued, _, _ = body.partition(".")
        if not body or not issued.isdigit() or not hmac.compare_digest(signature, self._sign(body)):
            return False
        return 0 <= time.time() - int(issued) <= self.ttl_s


class Workspaces:
    """The Web API client that speaks for a workspace.

    Args:
        base_url: the Web API (``SLACK_API_URL``).
        single: the ``SLACK_BOT_TOKEN`` client (single-workspace mode), used for every team.
        installations: the installation store (multi-workspace mode).
        client_id: the app's id, and ``client_secret`` its secret, to rotate tokens.
    """

    def __init__(
        self,
        base_url: str,
        *,
        single: AsyncWebClient | None = None,
        installations: DatabaseInstallations | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.single = single
        self.installations = installations
        self._clients: dict[str, AsyncWebClient] = {}
        self._directories: dict[str, SlackDirectory] = {}
        self._rotator = (
            AsyncTokenRotator(
                client_id=client_id,
                client_secret=client_secret,
                client=AsyncWebClient(base_url=base_url),
            )
            if client_id and client_secret
            else None
        )

    async def client(self, team: str | None = None) -> AsyncWebClient:
        """The client for ``team`` (``TEAM`` when not given).

        Raises:
            NotFound: multi-workspace mode, and the workspace is not known or not installed.
        """
        if self.single is not None:
            return self.single
        team = team or TEAM.get()
        if self.installations is None:
            raise NotFound("no Slack workspace is configured")
        if team is None:
            every = await self.installations.store.list_installations()
            if len(every) != 1:
                raise NotFound(
                    "this message belongs to no Slack workspace (the run was not started from Slack, "
                    "and Signoff is installed in more than one)"
                )
            team = every[0].team_id
        bot = await self.installations.async_find_bot(
            enterprise_id=None, team_id=team, is_enterprise_install=False
        )
        if bot is None or not bot.bot_token:
            raise NotFound(f"Signoff is not installed in Slack workspace {team}")
        bot = await self._rotated(bot)
        token = str(bot.bot_token)
        client = self._clients.get(team)
        if client is None or client.token != token:
            client = self._clients[team] = AsyncWebClient(token=token, base_url=self.base_url)
        return client

    async def _rotated(self, bot: Bot) -> Bot:
        """``bot`` with a fresh token when its own expires soon (stored before it is used)."""
        if bot.bot_refresh_token is None or self._rotator is None or self.installations is None:
            return bot
        try:
            fresh = await self._rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=ROTATE_BEFORE_MIN
            )
        except (SlackTokenRotationError, SlackApiError, SlackClientError) as exc:
            # another process may have rotated it first (a refresh token is good once): use theirs
            again = await self.installations.async_find_bot(
                enterprise_id=bot.enterprise_id,
                team_id=bot.team_id,
                is_enterprise_install=bot.is_enterprise_install,
            )
            if again is not None and again.bot_token != bot.bot_token:
                return again
            log.warning("Slack: rotating the token of workspace %s failed: %s", bot.team_id, exc)
            return bot
        if fresh is None:
            return bot
        await self.installations.async_save_bot(fresh)
        return fresh

    async def directory(self, team: str | None = None) -> SlackDirectory:
        """The user-group and channel lookups of ``team`` (``TEAM`` when not given)."""
        client = await self.client(team)
        key = "" if self.single is not None else str(team or TEAM.get() or "")
        found = self._directories.get(key)
        if found is None:
            found = self._directories[key] = SlackDirectory(client)
        found.client = client
        return found


class TeamDirectory:
    """``engine.ports.Directory`` across workspaces: user groups of the workspace named (a
    checkpoint's), else of ``TEAM``'s (the request at hand); channels of ``TEAM``'s; an unknown
    workspace has no members (failing closed)."""

    def __init__(self, workspaces: Workspaces) -> None:
        self.workspaces = workspaces

    async def group_members(self, group_id: str, team: str | None = None) -> list[str]:
        """User ids in the group, in ``team`` or else the workspace at hand. A workspace that
        cannot be reached (not installed, its token unreadable or refused) has no members: one
        broken installation must not break the lists and decisions of the others."""
        try:
            return await (await self.workspaces.directory(team)).group_members(group_id)
        except (NotFound, ConfigError, SlackClientError) as exc:
            log.warning("usergroups.users.list %s in workspace %s: %s", group_id, team or TEAM.get(), exc)
            return []

    async def channel_members(self, channel_id: str) -> list[str]:
        """User ids in the channel, in the workspace at hand (see ``engine.ports.Directory``)."""
        try:
            return await (await self.workspaces.directory()).channel_members(channel_id)
        except (NotFound, ConfigError, SlackClientError) as exc:
            log.warning("conversations.members %s: %s", channel_id, exc)
            return []
