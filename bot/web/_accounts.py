"""Who may sign in, which person a login is, and console sessions (private).

A login (``_oidc.Login``) vouches for identities. It may sign in when one of them is already
linked to a person, or named in the roles file (a member or a delegate), or when its email
address is in ``SIGNOFF_AUTH_DOMAINS``, or when Slack says it is a member of the installation's
workspace. Its identities are then linked to one person (a ``person.linked`` audit event names
what was added); identities that belong to two different people refuse the login instead of
merging them.

A session is a row (``console_sessions``) found by the SHA-256 of the random id in the signed
cookie, so logging out ends it at once everywhere, and it ends after ``SIGNOFF_SESSION_IDLE``
without a request and ``SIGNOFF_SESSION_MAX`` after sign-in, whatever happens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from bot.web._oidc import Login, refused
from bot.wiring import Container
from engine.people import ConsoleSession, PeopleStore, Person
from engine.ports import AuditDraft

__all__ = ["Current", "admit", "current", "end", "hashed", "start"]

_TOUCH_EVERY = timedelta(seconds=60)  # one write per minute of activity, not one per request


def hashed(secret: str) -> str:
    """How a session id or a login token is stored: its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _people(container: Container) -> PeopleStore:
    if container.people is None:
        raise refused("this deployment's store keeps no people, so nobody can sign in")
    return container.people


def _listed(container: Container, identities: list[str]) -> bool:
    named = {p for role in container.roles.values() for p in (*role.members, *role.delegates)}
    named = {p.lower() if p.startswith("email:") else p for p in named}
    return any(i in named for i in identities)


def _in_domains(container: Container, identities: list[str]) -> bool:
    domains = container.settings.login.domains
    return any(i.startswith("email:") and i.rsplit("@", 1)[-1] in domains for i in identities)


async def may_sign_in(container: Container, identities: list[str], *, trusted: bool = False) -> bool:
    """True when a login vouching for ``identities`` may sign in (see the module docstring)."""
    if trusted or _listed(container, identities) or _in_domains(container, identities):
        return True
    people = _people(container)
    return any([await people.find_person(i) is not None for i in identities])


async def admit(container: Container, login: Login) -> Person:
    """The person ``login`` is, with its identities linked to them.

    Raises:
        NotAllowed: this login may not sign in, or its identities belong to different people.
    """
    people = _people(container)
    owners: dict[str, Person] = {}
    for identity in login.identities:
        found = await people.find_person(identity)
        if found is not None:
            owners[found.id] = found
    if len(owners) > 1:
        raise refused(
            "the identities of this sign-in are linked to two different people in Signoff; "
            "an administrator can link them (signoff people link)"
        )
    if not owners and not await may_sign_in(container, login.identities, trusted=login.trusted):
        raise refused(
            "this account is not allowed to sign in here: it is not listed in the roles file, and "
            "its email domain is not one of SIGNOFF_AUTH_DOMAINS; ask an administrator"
        )
    now = container.clock.now()
    person = next(iter(owners.values()), None) or Person(
        id=container.ids.new("per_"), name=login.name, created_at=now
    )
    added = [i for i in login.identities if i not in person.identities]
    if not added:
        return person
    audit = AuditDraft(
        at=now,
        actor=person.actor if person.identities else login.identities[0],
        channel="web",
        kind="person.linked",
        payload={"person": person.id, "added": added, "provider": login.provider},
    )
    wanted = person.model_copy(
        update={"identities": [*person.identities, *added], "name": person.name or login.name}
    )
    return await people.link_person(wanted, [audit])


async def start(container: Container, person: Person, provider: str, sid: str) -> None:
    """Open a session for ``person`` under the (new) cookie session id ``sid``."""
    now = container.clock.now()
    session = ConsoleSession(
        id=hashed(sid),
        person_id=person.id,
        provider=provider,
        created_at=now,
        seen_at=now,
        expires_at=now + container.settings.login.absolute,
    )
    audit = AuditDraft(
        at=now,
        actor=person.actor,
        channel="web",
        kind="console.signed_in",
        payload={"person": person.id, "provider": provider, "until": session.expires_at.isoformat()},
    )
    await _people(container).add_session(session, [audit])


@dataclass(frozen=True)
class Current:
    """The request's session: the person signed in (None: nobody), and whether a session
    existed but has expired (the login page says so)."""

    person: Person | None
    expired: bool = False


async def current(container: Container, sid: str, *, touch: bool = True) -> Current:
    """Who the cookie session ``sid`` signs in, now (``touch``: a request of the person's, which
    keeps the session from idling out; an open event stream's checks are not)."""
    people = _people(container)
    session = await people.get_session(hashed(sid))
    if session is None:
        return Current(None)
    now = container.clock.now()
    login = container.settings.login
    if session.ended_at is not None:
        return Current(None)
    if now >= session.expires_at or now - session.seen_at >= login.idle:
        return Current(None, expired=True)
    if touch and now - session.seen_at >= _TOUCH_EVERY:
        await people.touch_session(session.id, now)
    return Current(await people.get_person(session.person_id))


async def end(container: Container, sid: str, person: Person) -> None:
    """End the session ``sid`` (logout)."""
    now = container.clock.now()
    audit = AuditDraft(
        at=now, actor=person.actor, channel="web", kind="console.signed_out", payload={"person": person.id}
    )
    await _people(container).end_session(hashed(sid), now, [audit])
