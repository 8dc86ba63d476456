"""People: one identity per person across channels, and the console's sessions and login tokens.

A person is known by several *identities*: a Slack user id (``user:U024BE7LH``, also a local
name such as ``user:alice``), an email address (``email:ann@corp.example``) and the subjects of
the login providers they signed in with (``oidc:<issuer>#<sub>``). ``user:`` and ``email:``
identities are principals too: roles and assignees name people by them. The ``PeopleStore``
links them to one ``Person``; the decision gate asks it for a person's *aliases* (every
principal that names the same person), so that a role member listed as ``email:ann@corp.example``
who signed in with Slack decides as that member, and counts once toward a quorum whichever
channel each attempt comes from.

An actor (who acts, as the surfaces name them) is a bare id (``U024BE7LH``, ``alice``) or, for
a person known only by email, the principal itself (``email:ann@corp.example``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from engine.model import Decision
from engine.ports import AuditDraft

__all__ = [
    "ConsoleSession",
    "LoginToken",
    "PeopleStore",
    "Person",
    "actor_of",
    "as_principal",
    "email_identity",
    "oidc_identity",
]

EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)+$")
_KINDS = ("user:", "email:", "oidc:")


def email_identity(address: str) -> str:
    """``email:<address>`` in lower case. Raises ValueError for something that is not an address."""
    address = address.strip().lower()
    if not EMAIL.match(address) or len(address) > 254:
        raise ValueError(f"{address!r} is not an email address")
    return f"email:{address}"


def oidc_identity(issuer: str, subject: str) -> str:
    """The identity of a login provider's subject (never a principal: roles name people by
    ``user:`` or ``email:``)."""
    return f"oidc:{issuer.rstrip('/')}#{subject}"


def as_principal(who: str) -> str:
    """An actor or principal as a principal: ``U024`` -> ``user:U024``; ``email:Ann@X.org`` ->
    ``email:ann@x.org``; ``user:x`` stays."""
    if who.startswith("email:"):
        return "email:" + who.removeprefix("email:").strip().lower()
    if who.startswith(_KINDS):
        return who
    return f"user:{who}"


def actor_of(principal: str) -> str:
    """The actor id a principal names: ``user:U024`` -> ``U024``; an email principal stays."""
    return principal.removeprefix("user:") if principal.startswith("user:") else principal


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Person(_Frozen):
    """One person and every identity they are known by (``user:``, ``email:``, ``oidc:``)."""

    id: str
    name: str = ""
    identities: list[str] = Field(default_factory=list)
    created_at: datetime
    # the channel they are reached on (bot/mail); None: the roles file's ``people:``, or the default
    prefers: Literal["email", "slack"] | None = None

    @property
    def principals(self) -> list[str]:
        """The identities that roles and assignees can name (``user:`` and ``email:``)."""
        return [i for i in self.identities if i.startswith(("user:", "email:"))]

    @property
    def actor(self) -> str:
        """How this person acts on the console: their first ``user:`` id (a Slack id when they
        signed in with Slack), else their first email principal, else the person id."""
        users = [i for i in self.identities if i.startswith("user:")]
        if users:
            return actor_of(users[0])
        emails = [i for i in self.identities if i.startswith("email:")]
        return emails[0] if emails else f"person:{self.id}"

    @property
    def email(self) -> str | None:
        """The first email address, if any."""
        return next((i.removeprefix("email:") for i in self.identities if i.startswith("email:")), None)


class ConsoleSession(_Frozen):
    """A signed-in console session. ``id`` is the SHA-256 of the cookie's session id, so the
    table never holds a usable cookie."""

    id: str
    person_id: str
    provider: str
    created_at: datetime
    seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None


class LoginToken(_Frozen):
    """A single-use login token (a pending OIDC login, an emailed login link), by the SHA-256 of
    its secret part."""

    id: str
    kind: str
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@runtime_checkable
class PeopleStore(Protocol):
    """People and their identities, console sessions and login tokens (SQL, or in memory)."""

    async def find_person(self, identity: str) -> Person | None:
        """The person ``identity`` is linked to, or None."""
        ...

    async def get_person(self, person_id: str) -> Person:
        """One person. Raises NotFound."""
        ...

    async def list_people(self) -> list[Person]:
        """Every person, oldest first."""
        ...

    async def link_person(self, person: Person, audit: list[AuditDraft]) -> Person:
        """Store ``person``: a new one, or more identities for a stored one (identities are never
        removed here). Returns what is stored.

        Raises:
            Conflict: one of its identities belongs to another person.
        """
        ...

    async def set_preference(
        self, person_id: str, prefers: Literal["email", "slack"] | None, audit: list[AuditDraft]
    ) -> Person:
        """Record the channel a person prefers (None: no preference). Raises NotFound."""
        ...

    async def decisions_by(self, actors: list[str], *, limit: int = 50) -> list[Decision]:
        """The newest decisions whose actor is one of ``actors`` (a person's actor ids), newest first."""
        ...

    async def add_session(self, session: ConsoleSession, audit: list[AuditDraft]) -> None:
        """Store a new session. Raises Conflict when its id exists."""
        ...

    async def get_session(self, session_id: str) -> ConsoleSession | None:
        """A session by id (ended or not), or None."""
        ...

    async def touch_session(self, session_id: str, at: datetime) -> None:
        """Record activity on a session (its idle expiry counts from ``at``)."""
        ...

    async def end_session(self, session_id: str, at: datetime, audit: list[AuditDraft]) -> None:
        """End a session now (logout); ending an ended or unknown session changes nothing."""
        ...

    async def add_login_token(self, token: LoginToken) -> None:
        """Store a new login token. Raises Conflict when its id exists."""
        ...

    async def use_login_token(self, token_id: str, at: datetime) -> LoginToken | None:
        """Mark a token used and return it, once: None when it is unknown, already used or
        expired at ``at`` (compare-and-set)."""
        ...
