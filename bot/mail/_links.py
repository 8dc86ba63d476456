"""Decision links (private): signed, single-use, scoped to one checkpoint, person and version.

A link carries ``[secret, checkpoint, principal, version, expiry, code?]`` signed with the process's
secret key (``itsdangerous``), so a changed character is refused before anything is looked up.
The SHA-256 of the secret is stored as a ``login_tokens`` row of kind ``decision`` when the
mail is sent; using the link marks that row used in one compare-and-set, so a link decides at
most once across every replica. Opening a link (GET) reads the signature only and uses nothing.

A link minted with a one-time code (high-priority checkpoints) decides only with the six digits
written in the mail, never in any URL: a link that leaked through a scanner, a proxy log or a
forwarded preview is not enough. The row keeps a digest of secret and code; a wrong code uses
the link up (so it cannot be guessed at), and the caller mails a new link and code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from itsdangerous import BadData, URLSafeSerializer

from engine.model import Checkpoint
from engine.people import LoginToken, PeopleStore

__all__ = ["DECISION", "DecisionLinks", "LinkClaim", "Minted", "Used"]

DECISION = "decision"
"""The ``login_tokens`` kind of a decision link."""
PATH = "/mail/decide/"


@dataclass(frozen=True)
class LinkClaim:
    """What a validly signed link says: whose decision on which checkpoint version, until when."""

    token_id: str
    checkpoint_id: str
    principal: str
    version: int
    expires_at: datetime
    secret: str
    needs_code: bool = False

    @property
    def scope(self) -> dict[str, Any]:
        """What the stored row must say for this link."""
        return {"checkpoint": self.checkpoint_id, "principal": self.principal, "version": self.version}

    def expired(self, now: datetime) -> bool:
        """True once the link's time is up."""
        return now >= self.expires_at


@dataclass(frozen=True)
class Minted:
    """A new link, and its one-time code when it needs one."""

    url: str
    code: str | None = None


Used = Literal["ok", "used", "wrong_code", "no_code"]
"""What using a link did: decided may go ahead, or why not."""


class DecisionLinks:
    """Makes, reads and uses decision links.

    Args:
        people: where the single-use rows live (``login_tokens``).
        secret: the process's secret key (``SIGNOFF_SECRET_KEY`` or its file).
        base_url: ``SIGNOFF_PUBLIC_URL``.
        ttl: how long a link works (``SIGNOFF_DECISION_LINK_TTL``).
    """

    def __init__(self, people: PeopleStore, secret: str, base_url: str, ttl: timedelta) -> None:
        self.people = people
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        self._signer = URLSafeSerializer(secret, salt="signoff.mail.decide")

    async def mint(self, cp: Checkpoint, principal: str, now: datetime, *, code: bool = False) -> Minted:
        """A new link for ``principal`` to decide ``cp`` at its current version (stored, unused),
        with a one-time code when ``code``."""
        secret = secrets.token_urlsafe(24)
        expires = now + self.ttl
        digits = f"{secrets.randbelow(10**6):06d}" if code else None
        scope: dict[str, Any] = {"checkpoint": cp.id, "principal": principal, "version": cp.version}
        if digits is not None:
            scope["code"] = _code_digest(secret, digits)
        token = LoginToken(id=_hashed(secret), kind=DECISION, data=scope, created_at=now, expires_at=expires)
        await self.people.add_login_token(token)
        signed = self._signer.dumps([secret, cp.id, principal, cp.version, int(expires.timestamp()), code])
        return Minted(url=f"{self.base_url}{PATH}{signed}", code=digits)

    def read(self, signed: str) -> LinkClaim | None:
        """The claim of a link whose signature holds, or None (tampered, truncated, foreign)."""
        try:
            raw: Any = self._signer.loads(signed)
        except BadData:
            return None
        if not (isinstance(raw, list) and len(raw) == 6):
            return None
        secret, checkpoint_id, principal, version, expires, code = raw
        if not (
            isinstance(secret, str)
            and isinstance(checkpoint_id, str)
            and isinstance(principal, str)
            and isinstance(version, int)
            and isinstance(expires, int)
            and isinstance(code, bool)
        ):
            return None
        return LinkClaim(
            token_id=_hashed(secret),
            checkpoint_id=checkpoint_id,
            principal=principal,
            version=version,
            expires_at=datetime.fromtimestamp(expires, UTC),
            secret=secret,
            needs_code=code,
        )

    async def use(self, claim: LinkClaim, now: datetime, code: str = "") -> Used:
        """Mark the link used, once. ``used``: it was used, has expired or was never issued;
        ``no_code``: it needs its code and none was typed (nothing is used); ``wrong_code``: the
        code was wrong, and the link is used up."""
        if claim.needs_code and not code.strip():
            return "no_code"
        token = await self.people.use_login_token(claim.token_id, now)
        if token is None or token.kind != DECISION:
            return "used"
        data = dict(token.data)
        stored_code = data.pop("code", None)
        if data != claim.scope or (stored_code is not None) != claim.needs_code:
            return "used"
        if stored_code is not None and not hmac.compare_digest(
            str(stored_code), _code_digest(claim.secret, code.strip())
        ):
            return "wrong_code"
        return "ok"

    async def again(self, claim: LinkClaim, now: datetime) -> str:
        """A fresh link token with the same scope and expiry, after an answer that needs
        correcting (the code, if any, was right: the fresh one needs none)."""
        secret = secrets.token_urlsafe(24)
        token = LoginToken(
            id=_hashed(secret), kind=DECISION, data=claim.scope, created_at=now, expires_at=claim.expires_at
        )
        await self.people.add_login_token(token)
        expires = int(claim.expires_at.timestamp())
        return self._signer.dumps(
            [secret, claim.checkpoint_id, claim.principal, claim.version, expires, False]
        )


def _hashed(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _code_digest(secret: str, code: str) -> str:
    return hashlib.sha256(f"{secret}:{code}".encode()).hexdigest()
