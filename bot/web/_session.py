"""Console sessions: a signed cookie, and the CSRF token every form carries (private).

The cookie holds a random session id signed with the server secret (``itsdangerous``, with a
timestamp so it expires). A form's CSRF token is the HMAC of that id under another salt: a
page on another site can make the browser send the cookie, but cannot read the token, and a
token copied from one session is worthless in another. With a login (``SIGNOFF_AUTH``), the
same cookie names the server-side session a sign-in opens (``_accounts``); the id is replaced at
sign-in and at logout, so a token or cookie from before never carries over.

The secret is ``SIGNOFF_SECRET_KEY``; without it, local mode generates one once into
``SIGNOFF_SECRET_KEY_FILE`` (default ``.signoff/secret_key``, mode 0600).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

from aiohttp import web
from itsdangerous import BadData, Signer, URLSafeTimedSerializer

from bot.config import ConfigError, Settings

SESSION_COOKIE = "signoff_session"
CSRF_FIELD = "csrf"
MIN_SECRET = 32  # as SIGNOFF_SECRET_KEY must be
_MAX_AGE_S = 30 * 86400
_RESIGN_AFTER_S = 86400


def load_secret(settings: Settings) -> str:
    """``SIGNOFF_SECRET_KEY``, else the key file (created with a new random key when missing).

    Raises:
        ConfigError: the key is too short, or the file can be read by other users.
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.secret_key_file
    if not path.exists():
        _create(path)
    return _read(path)


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_urlsafe(48) + "\n")
    try:
        # a hard link publishes the complete file at once, and fails if another process won
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink()


def _read(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        raise ConfigError(
            f"SIGNOFF_SECRET_KEY_FILE {path} can be read by other users: "
            "chmod 600 it (or set SIGNOFF_SECRET_KEY)"
        )
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < MIN_SECRET:
        raise ConfigError(f"SIGNOFF_SECRET_KEY_FILE {path} holds fewer than {MIN_SECRET} characters")
    return secret


class Sessions:
    """Signs and reads the session cookie, and makes and checks CSRF tokens."""

    def __init__(self, secret: str, *, secure: bool, samesite: str = "Strict") -> None:
        self._secret = secret
        self._cookie = URLSafeTimedSerializer(secret, salt="signoff.web.session")
        self._csrf = Signer(secret, salt="signoff.web.csrf")
        self._secure = secure
        # Lax when people sign in: the provider's redirect back is a cross-site navigation
        self._samesite = samesite

    def serializer(self, salt: str) -> URLSafeTimedSerializer:
        """A timed serializer under the same secret and another ``salt`` (login links)."""
        return URLSafeTimedSerializer(self._secret, salt=salt)

    def read(self, request: web.Request) -> tuple[str | None, bool]:
        """The session id of the request's cookie (None when absent, forged or expired), and
        whether its signature is old enough to be renewed."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None, False
        try:
            sid, signed_at = self._cookie.loads(raw, max_age=_MAX_AGE_S, return_timestamp=True)
        except BadData:
            return None, False
        if not isinstance(sid, str):
            return None, False
        return sid, time.time() - signed_at.timestamp() > _RESIGN_AFTER_S

    @staticmethod
    def new_id() -> str:
        """A fresh random session id."""
        return secrets.token_urlsafe(32)

    def set_cookie(self, response: web.StreamResponse, sid: str) -> None:
        """Give the browser a (newly) signed cookie for ``sid``."""
        response.set_cookie(
            SESSION_COOKIE,
            self._cookie.dumps(sid),
            max_age=_MAX_AGE_S,
            httponly=True,
            samesite=self._samesite,
            secure=self._secure,
            path="/",
        )

    def token(self, sid: str) -> str:
        """The CSRF token of session ``sid``."""
        return self._csrf.get_signature(sid).decode("ascii")

    def token_ok(self, sid: str, token: str) -> bool:
        """True when ``token`` is the CSRF token of ``sid`` (compared in constant time)."""
        return bool(token) and self._csrf.verify_signature(sid, token)
