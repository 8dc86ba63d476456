"""FakeOidc: an OpenID Connect provider on 127.0.0.1 (a company's, or Slack's OpenID endpoints).

It serves the discovery document, a JWKS with an RSA key made for the test, an authorization
endpoint that signs the scripted person in at once and sends the browser back with a code, and a
token endpoint that checks the client's secret, the code, the redirect URI and the PKCE
verifier before it returns an ID token signed with that key. Tests change what the ID token
says (``claims``), replay an earlier nonce (``nonce``) or sign with another key (``sign_with``).

``slack=True`` speaks like Slack: ``/api/openid.connect.token`` (client secret in the form),
``https://slack.com/user_id`` and ``https://slack.com/team_id`` claims.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import RSAKey

__all__ = ["FakeOidc", "new_key"]


def new_key(kid: str = "k1") -> RSAKey:
    """A fresh 2048-bit RSA signing key."""
    return RSAKey.generate_key(2048, parameters={"kid": kid})


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str


@dataclass
class FakeOidc:
    """The provider. ``person`` is who signs in at the authorization endpoint."""

    client_id: str = "signoff-client"
    client_secret: str = "s3cret-s3cret"
    slack: bool = False
    person: dict[str, Any] = field(default_factory=dict)
    key: RSAKey = field(default_factory=new_key)
    # what the next ID tokens carry instead (claims to override), or who signs them
    claims: dict[str, Any] = field(default_factory=dict)
    nonce: str | None = None
    sign_with: RSAKey | None = None
    nonces: list[str] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _server: TestServer | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the issuer)."""
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def __aenter__(self) -> Self:
        app = web.Application()
        token_path = "/api/openid.connect.token" if self.slack else "/token"
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post(token_path, self._token)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._server is not None:
            await self._server.close()

    async def _discovery(self, request: web.Request) -> web.Response:
        base = self.base_url
        token_path = "/api/openid.connect.token" if self.slack else "/token"
        return web.json_response(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}{token_path}",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": (
                    ["client_secret_post"] if self.slack else ["client_secret_basic", "client_secret_post"]
                ),
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.as_dict(private=False)]})

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != self.client_id or q.get("code_challenge_method") != "S256":
            return web.Response(status=400, text="bad authorization request")
        self.nonces.append(q.get("nonce", ""))
        code = secrets.token_urlsafe(16)
        self._grants[code] = _Grant(
            q["client_id"], q["redirect_uri"], q.get("nonce", ""), q["code_challenge"]
        )
        location = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
        raise web.HTTPFound(location)

    def _client_ok(self, request: web.Request, form: dict[str, str]) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic ") and not self.slack:
            got = base64.b64decode(header[6:]).decode()
            return got == f"{self.client_id}:{self.client_secret}"
        return form.get("client_id") == self.client_id and form.get("client_secret") == self.client_secret

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        if not self._client_ok(request, form):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or grant.redirect_uri != form.get("redirect_uri"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        return web.json_response(
            {
                "access_token": "at-" + secrets.token_hex(8),
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": self.id_token(grant.nonce),
            }
        )

    def id_token(self, nonce: str) -> str:
        """An ID token for ``person`` (with the overrides), as the token endpoint returns it."""
        now = int(time.time())
        claims = {
            "iss": self.base_url,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "nonce": self.nonce if self.nonce is not None else nonce,
            **self.person,
            **self.claims,
        }
        key = self.sign_with or self.key
        return jwt.encode({"alg": "RS256", "kid": str(key.kid)}, claims, key)
