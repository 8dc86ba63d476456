"""FakeSlack's OAuth side (private): workspaces that install the app, the tokens it issues, and
``oauth.v2.access`` for both the code exchange and token rotation (``grant_type=refresh_token``).

Shapes follow docs.slack.dev: oauth.v2.access (the install response, with ``refresh_token`` and
``expires_in`` when token rotation is on) and "Using token rotation" (a refresh answers a new
``xoxe.xoxb-`` access token and a new refresh token; the old refresh token stops working). The
app authenticates with HTTP Basic auth (``client_id:client_secret``), as slack_sdk sends it.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "fake-client-secret-0123456789abcd"


@dataclass
class Workspace:
    """A Slack team the app can be installed in."""

    team_id: str
    name: str
    bot_user_id: str
    bot_id: str
    installer: str = "UINSTALL1"


@dataclass
class Token:
    """An issued token: whose it is and when it stops working (None: never)."""

    team_id: str
    expires_at: float | None = None
    revoked: bool = False


@dataclass
class OAuth:
    """Install grants, issued tokens and refresh tokens."""

    wall: Callable[[], float]
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    app_id: str = "A0FAKE"
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    codes: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # code -> team, expires_in
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> team
    rotated_expires_in: int = 43200  # what a refresh grants (Slack: 12 hours)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def workspace(self, team_id: str, name: str | None = None) -> Workspace:
        """The team ``team_id`` (created on first use, with its own bot user)."""
        found = self.workspaces.get(team_id)
        if found is None:
            found = self.workspaces[team_id] = Workspace(
                team_id, name or f"Team {team_id}", bot_user_id=f"UB{team_id}", bot_id=f"BB{team_id}"
            )
        return found

    def grant(self, team_id: str, *, name: str | None = None, expires_in: int | None = None) -> str:
        """A person in ``team_id`` approved the install: the code Slack puts in the redirect.

        ``expires_in`` (seconds) turns token rotation on for that install.
        """
        self.workspace(team_id, name)
        code = f"{next(self._seq)}.code.{team_id}"
        self.codes[code] = (team_id, expires_in)
        return code

    def _issue(self, team_id: str, expires_in: int | None) -> Json:
        n = next(self._seq)
        if expires_in is None:
            token = f"xoxb-{team_id}-{n}"
            self.tokens[token] = Token(team_id)
            return {"access_token": token}
        token = f"xoxe.xoxb-1-{team_id}-{n}"
        refresh = f"xoxe-1-{team_id}-{n}"
        self.tokens[token] = Token(team_id, expires_at=self.wall() + expires_in)
        self.refresh[refresh] = team_id
        return {"access_token": token, "refresh_token": refresh, "expires_in": expires_in}

    def _client_ok(self, authorization: str, p: Json) -> bool:
        if authorization.startswith("Basic "):
            raw = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            client_id, _, secret = raw.partition(":")
        else:
            client_id, secret = str(p.get("client_id") or ""), str(p.get("client_secret") or "")
        return (client_id, secret) == (self.client_id, self.client_secret)

    def access(self, p: Json, authorization: str) -> Json:
        """``oauth.v2.access``: exchange a code, or (``grant_type=refresh_token``) rotate."""
        if not self._client_ok(authorization, p):
            return {"ok": False, "error": "invalid_client_id"}
        if p.get("grant_type") == "refresh_token":
            found = self.refresh.pop(str(p.get("refresh_token") or ""), None)
            if found is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            team_id = found
            issued = self._issue(team_id, self.rotated_expires_in)
        else:
            grant = self.codes.pop(str(p.get("code") or ""), None)
            if grant is None:
                return {"ok": False, "error": "invalid_code"}
            team_id, expires_in = grant
            issued = self._issue(team_id, expires_in)
        team = self.workspaces[team_id]
        body: Json = {
            "ok": True,
            "app_id": self.app_id,
            "token_type": "bot",
            "scope": "commands,chat:write,im:write",
            "bot_user_id": team.bot_user_id,
            "team": {"id": team.team_id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
            **issued,
        }
        if p.get("grant_type") != "refresh_token":
            body["authed_user"] = {"id": team.installer}
        return body

    def check(self, token: str) -> str | None:
        """The error Slack gives for an issued token that no longer works (None: it works, or
        it is not one of ours)."""
        found = self.tokens.get(token)
        if found is None:
            return None
        if found.revoked:
            return "token_revoked"
        if found.expires_at is not None and self.wall() >= found.expires_at:
            return "token_expired"
        return None

    def team_of(self, token: str) -> Workspace | None:
        """The workspace an issued token belongs to."""
        found = self.tokens.get(token)
        return None if found is None else self.workspaces[found.team_id]

    def revoke(self, team_id: str) -> None:
        """The app was uninstalled from ``team_id``: its tokens stop working."""
        for token in self.tokens.values():
            if token.team_id == team_id:
                token.revoked = True
        for refresh in [r for r, team in self.refresh.items() if team == team_id]:
            del self.refresh[refresh]
