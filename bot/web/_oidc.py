"""OpenID Connect sign-in (private): Sign in with Slack and a company's provider, with Authlib.

Authlib does the protocol: discovery, the authorization code flow with PKCE (S256), ``state``
and ``nonce``, the token exchange, and the ID token's checks (signature against the provider's
JWKS, issuer, audience, expiry, nonce). What is left here is which claims name the person:

- any provider: its subject (``oidc:<issuer>#<sub>``) and, only when ``email_verified`` is true,
  the email address;
- Slack: also the Slack user id (``user:U…``), and the workspace must be the installation's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx2
from authlib.integrations.base_client import BaseApp, FrameworkIntegration, OAuthError
from authlib.integrations.base_client.async_app import AsyncOAuth2Mixin
from authlib.integrations.base_client.async_openid import AsyncOpenIDMixin
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc.errors import JoseError

from bot.login_config import OidcClient
from engine.errors import NotAllowed
from engine.people import email_identity, oidc_identity

__all__ = ["Login", "Provider", "refused"]

log = logging.getLogger("signoff.web.login")

SLACK_USER = "https://slack.com/user_id"
SLACK_TEAM = "https://slack.com/team_id"
_TIMEOUT_S = 10.0
_LEEWAY_S = 60


def refused(message: str) -> NotAllowed:
    """A refused sign-in: the person sees ``message`` on the login page."""
    return NotAllowed(message, rule="login_refused")


@dataclass(frozen=True)
class Login:
    """Who a provider (or an emailed link) says signed in: every identity it vouches for."""

    provider: str
    identities: list[str]
    name: str = ""
    trusted: bool = False  # a member of the installation's Slack workspace
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Begun:
    """Where to send the browser, and what the callback must present again."""

    url: str
    state: str
    nonce: str
    verifier: str


class _App(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):
    client_cls = AsyncOAuth2Client


class Provider:
    """One OpenID Connect provider (``slack`` or ``oidc``)."""

    def __init__(self, name: str, client: OidcClient) -> None:
        self.name = name
        self.label = client.label
        self._app = _App(
            FrameworkIntegration(name),
            name=name,
            client_id=client.client_id,
            client_secret=client.client_secret.get_secret_value(),
            server_metadata_url=client.discovery_url,
            client_kwargs={
                "scope": "openid email profile",
                "code_challenge_method": "S256",
                "timeout": _TIMEOUT_S,
            },
        )

    async def _metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = await self._app.load_server_metadata()
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if "client_secret_basic" not in methods and "client_secret_post" in methods:
            self._app.client_kwargs["token_endpoint_auth_method"] = "client_secret_post"  # noqa: S105  # a method name
        return metadata

    async def begin(self, redirect_uri: str) -> Begun:
        """The authorization URL (with ``state``, ``nonce`` and a PKCE challenge).

        Raises:
            NotAllowed: the provider cannot be reached or its discovery document is unusable.
        """
        try:
            await self._metadata()
            made: dict[str, Any] = await self._app.create_authorization_url(redirect_uri)
        except (httpx2.HTTPError, OAuthError, RuntimeError, ValueError) as exc:
            log.warning("sign-in with %s: discovery failed: %s", self.name, exc)
            raise refused(f"{self.label} could not be reached to sign you in; try again later") from exc
        return Begun(str(made["url"]), str(made["state"]), str(made["nonce"]), str(made["code_verifier"]))

    async def finish(self, code: str, redirect_uri: str, begun: Begun, slack_teams: frozenset[str]) -> Login:
        """Exchange the code and check the ID token; the person it names (with Slack, a member of
        one of ``slack_teams``, the workspaces Signoff is installed in).

        Raises:
            NotAllowed: the exchange failed, or the ID token failed a check (signature, issuer,
                audience, expiry, nonce), or it names nobody we can use.
        """
        try:
            metadata = await self._metadata()
            token = await self._app.fetch_access_token(  # type: ignore[no-untyped-call]  # untyped in the stubs
                redirect_uri=redirect_uri, code=code, code_verifier=begun.verifier
            )
            # Authlib checks only the issuer unless told: the audience must be this client
            # (an ID token issued to another client is refused even when it names us in azp)
            options = {
                "iss": {"essential": True, "values": [metadata.get("issuer")]},
                "aud": {"essential": True, "value": self._app.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
            }
            verified = await self._app.parse_id_token(
                token, nonce=begun.nonce, claims_options=options, leeway=_LEEWAY_S
            )
            claims: dict[str, Any] = dict(verified)
        except (JoseError, OAuthError) as exc:
            log.warning("sign-in with %s refused: %s", self.name, exc)
            raise refused(
                f"{self.label} did not vouch for this sign-in ({_reason(exc)}); nothing was changed"
            ) from exc
        except (httpx2.HTTPError, RuntimeError, ValueError, KeyError) as exc:
            log.warning("sign-in with %s failed: %s", self.name, exc)
            raise refused(f"the sign-in with {self.label} could not be completed; try again") from exc
        return self._login(claims, slack_teams)

    def _login(self, claims: dict[str, Any], slack_teams: frozenset[str]) -> Login:
        issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
        if not subject:
            raise refused(f"{self.label} named nobody in its answer")
        identities = [oidc_identity(issuer, subject)]
        trusted = False
        if self.name == "slack":
            user, team = str(claims.get(SLACK_USER) or subject), claims.get(SLACK_TEAM)
            if not isinstance(team, str) or team not in slack_teams:
                raise refused(
                    "this Slack account belongs to another workspace than the one Signoff is installed in"
                )
            identities.insert(0, f"user:{user}")
            trusted = True
        email = claims.get("email")
        if isinstance(email, str) and claims.get("email_verified") is True:
            try:
                identities.append(email_identity(email))
            except ValueError:
                log.warning("sign-in with %s: ignoring the malformed address %r", self.name, email)
        name = str(claims.get("name") or email or subject)
        return Login(provider=self.name, identities=identities, name=name, trusted=trusted)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "description", None) or str(exc) or type(exc).__name__
    return str(text)[:200]
