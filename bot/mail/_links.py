"""Decision links (private): signed, single-use, scoped to one checkpoint, person and version.

A link carries ``[secret, checkpoint, principal, version, expiry]`` signed with the process's
secret key (``itsdangerous``), so a changed character is refused before anything is looked up.
The SHA-256 of the secret is stored as a ``login_tokens`` row of kind ``decision`` when the
mail is sent; using the link marks that row used in one compare-and-set, so a link decides at
most once across every replica. Opening a link (GET) reads the signature only and uses nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from engine.model import Checkpoint
from engine.people import LoginToken, PeopleStore

__all__ = ["DECISION", "DecisionLinks", "LinkClaim"]

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

    def expired(self, now: datetime) -> bool:
        """True once the link's time is up."""
        return now >= self.expires_at


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

    async def mint(self, cp: Checkpoint, principal: str, now: datetime) -> str:
        """A new link for ``principal`` to decide ``cp`` at its current version (stored, unused)."""
        secret = secrets.token_urlsafe(24)
        expires = now + self.ttl
        scope = {"checkpoint": cp.id, "principal": principal, "version": cp.version}
        token = LoginToken(id=_hashed(secret), kind=DECISION, data=scope, created_at=now, expires_at=expires)
        await self.people.add_login_token(token)
        signed = self._signer.dumps([secret, cp.id, principal, cp.version, int(expires.timestamp())])
        return f"{self.base_url}{PATH}{signed}"

    def read(self, signed: str) -> LinkClaim | None:
        """The claim of a link whose signature holds, or None (tampered, truncated, foreign)."""
        try:
            raw: Any = self._signer.loads(signed)
        except BadData:
            return None
        if not (isinstance(raw, list) and len(raw) == 5):
            return None
        secret, checkpoint_id, principal, version, expires = raw
        if not (
            isinstance(secret, str)
            and isinstance(checkpoint_id, str)
            and isinstance(principal, str)
            and isinstance(version, int)
            and isinstance(expires, int)
        ):
            return None
        return LinkClaim(
            token_id=_hashed(secret),
            checkpoint_id=checkpoint_id,
            principal=principal,
            version=version,
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    async def use(self, claim: LinkClaim, now: datetime) -> bool:
        """Mark the link used, once: False when it was used, has expired or was never issued."""
        token = await self.people.use_login_token(claim.token_id, now)
        if token is None or token.kind != DECISION:
            return False
        scope = {"checkpoint": claim.checkpoint_id, "principal": claim.principal, "version": claim.version}
        return token.data == scope

    async def again(self, claim: LinkClaim, now: datetime) -> str:
        """A fresh link with the same scope and expiry (after an answer that needs correcting)."""
        secret = secrets.token_urlsafe(24)
        scope = {"checkpoint": claim.checkpoint_id, "principal": claim.principal, "version": claim.version}
        token = LoginToken(
            id=_hashed(secret), kind=DECISION, data=scope, created_at=now, expires_at=claim.expires_at
        )
        await self.people.add_login_token(token)
        return self._signer.dumps(
            [secret, claim.checkpoint_id, claim.principal, claim.version, int(claim.expires_at.timestamp())]
        )


def _hashed(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
