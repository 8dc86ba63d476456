"""The in-memory ``PeopleStore`` (private: a mixin of ``engine.testing.InMemoryRunStore``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from engine.errors import Conflict, NotFound
from engine.model import Decision
from engine.people import ConsoleSession, LoginToken, Person
from engine.ports import AuditDraft

__all__ = ["InMemoryPeople"]


class InMemoryPeople:
    """People, identities, sessions and login tokens in dictionaries."""

    _decisions: dict[str, Decision]  # the run store's

    def _append(self, drafts: list[AuditDraft]) -> None:  # provided by the run store
        raise NotImplementedError

    async def decisions_by(self, actors: list[str], *, limit: int = 50) -> list[Decision]:
        """The newest decisions made by one of ``actors``, newest first."""
        found = [d for d in reversed(self._decisions.values()) if d.actor in actors]
        return found[:limit]

    @property
    def _people_state(self) -> tuple[dict[str, Person], dict[str, ConsoleSession], dict[str, LoginToken]]:
        state = self.__dict__.get("_people_tables")
        if state is None:
            state = self.__dict__["_people_tables"] = ({}, {}, {})
        people: tuple[dict[str, Person], dict[str, ConsoleSession], dict[str, LoginToken]] = state
        return people

    async def find_person(self, identity: str) -> Person | None:
        """The person ``identity`` is linked to, or None."""
        people, _, _ = self._people_state
        return next((p for p in people.values() if identity in p.identities), None)

    async def get_person(self, person_id: str) -> Person:
        """One person. Raises NotFound."""
        found = self._people_state[0].get(person_id)
        if found is None:
            raise NotFound(f"person {person_id} not found")
        return found

    async def list_people(self) -> list[Person]:
        """Every person, oldest first."""
        return list(self._people_state[0].values())

    async def link_person(self, person: Person, audit: list[AuditDraft]) -> Person:
        """Insert a person or add identities to a stored one. Raises Conflict (another person's identity)."""
        people, _, _ = self._people_state
        for identity in person.identities:
            owner = await self.find_person(identity)
            if owner is not None and owner.id != person.id:
                raise Conflict(f"{identity} already belongs to person {owner.id}")
        stored = people.get(person.id)
        if stored is not None:
            merged = list(dict.fromkeys([*stored.identities, *person.identities]))
            person = stored.model_copy(update={"identities": merged, "name": person.name or stored.name})
        people[person.id] = person
        self._append(audit)
        return person

    async def set_preference(
        self, person_id: str, prefers: Literal["email", "slack"] | None, audit: list[AuditDraft]
    ) -> Person:
        """Record the channel a person prefers. Raises NotFound."""
        people = self._people_state[0]
        stored = people.get(person_id)
        if stored is None:
            raise NotFound(f"person {person_id} not found")
        people[person_id] = stored.model_copy(update={"prefers": prefers})
        self._append(audit)
        return people[person_id]

    async def add_session(self, session: ConsoleSession, audit: list[AuditDraft]) -> None:
        """Store a new session. Raises Conflict when its id exists."""
        sessions = self._people_state[1]
        if session.id in sessions:
            raise Conflict("session already exists")
        sessions[session.id] = session
        self._append(audit)

    async def get_session(self, session_id: str) -> ConsoleSession | None:
        """A session by id, or None."""
        return self._people_state[1].get(session_id)

    async def touch_session(self, session_id: str, at: datetime) -> None:
        """Record activity on a session."""
        sessions = self._people_state[1]
        found = sessions.get(session_id)
        if found is not None and found.ended_at is None:
            sessions[session_id] = found.model_copy(update={"seen_at": max(at, found.seen_at)})

    async def end_session(self, session_id: str, at: datetime, audit: list[AuditDraft]) -> None:
        """End a session now; an ended or unknown one changes nothing."""
        sessions = self._people_state[1]
        found = sessions.get(session_id)
        if found is None or found.ended_at is not None:
            return
        sessions[session_id] = found.model_copy(update={"ended_at": at})
        self._append(audit)

    async def add_login_token(self, token: LoginToken) -> None:
        """Store a new login token. Raises Conflict when its id exists."""
        tokens = self._people_state[2]
        if token.id in tokens:
            raise Conflict("login token already exists")
        tokens[token.id] = token

    async def use_login_token(self, token_id: str, at: datetime) -> LoginToken | None:
        """Mark a token used and return it, once; None when unknown, used or expired."""
        tokens = self._people_state[2]
        found = tokens.get(token_id)
        if found is None or found.used_at is not None or found.expires_at <= at:
            return None
        tokens[token_id] = used = found.model_copy(update={"used_at": at})
        return used
