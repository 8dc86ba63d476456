"""People and their identities, console sessions and login tokens (the ``PeopleStore`` port)."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.errors import Conflict, NotFound
from engine.model import Decision
from engine.people import ConsoleSession, LoginToken, Person
from engine.ports import AuditDraft
from storage import _audit
from storage._db import Tx
from storage._sql import Sql, bind_when, dumps_json
from storage.mapping import DECISIONS, Shape, insert
from storage.tables import ConsoleSessionRow, LoginTokenRow, PersonRow

__all__ = [
    "add_session",
    "add_token",
    "decisions_by",
    "end_session",
    "find",
    "get",
    "get_session",
    "link",
    "listing",
    "prefer",
    "touch_session",
    "use_token",
]

PEOPLE: Shape[Person] = Shape(Person, PersonRow)
SESSIONS: Shape[ConsoleSession] = Shape(ConsoleSession, ConsoleSessionRow)
TOKENS: Shape[LoginToken] = Shape(LoginToken, LoginTokenRow)

_BY_ID = PEOPLE.select("WHERE id = :id")
_LOCK_BY_ID = PEOPLE.select("WHERE id = :id", lock=True)
_BY_IDENTITY = Sql(
    f"SELECT {', '.join('p.' + c for c in PEOPLE.names)} FROM people p "
    "JOIN person_identities i ON i.person_id = p.id WHERE i.identity = :identity"
)
_PREFER = Sql(f"UPDATE people SET prefers = :prefers WHERE id = :id RETURNING {PEOPLE.columns}")
_OWNER = Sql("SELECT person_id FROM person_identities WHERE identity = :identity")
_ALL = PEOPLE.select("ORDER BY pk")
# inserts never raise on a duplicate (on PostgreSQL an error would only surface at commit):
# they return nothing instead, and the caller raises Conflict
_INSERT_PERSON = insert(PEOPLE, "ON CONFLICT (id) DO NOTHING RETURNING id")
_UPDATE_PERSON = Sql("UPDATE people SET identities = :identities, name = :name WHERE id = :id")
_INSERT_IDENTITY = Sql(
    "INSERT INTO person_identities (identity, person_id) VALUES (:identity, :person_id)"
    " ON CONFLICT (identity) DO NOTHING RETURNING person_id"
)
_INSERT_SESSION = insert(SESSIONS, "ON CONFLICT (id) DO NOTHING RETURNING id")
_SESSION = SESSIONS.select("WHERE id = :id")
_TOUCH = Sql(
    "UPDATE console_sessions SET seen_at = :at WHERE id = :id AND ended_at IS NULL AND seen_at < :at"
)
_END = Sql("UPDATE console_sessions SET ended_at = :at WHERE id = :id AND ended_at IS NULL RETURNING id")
_INSERT_TOKEN = insert(TOKENS, "ON CONFLICT (id) DO NOTHING RETURNING id")
_USE = Sql(
    "UPDATE login_tokens SET used_at = :at WHERE id = :id AND used_at IS NULL AND expires_at > :at"
    f" RETURNING {TOKENS.columns}"
)
_FORGET_TOKENS = Sql("DELETE FROM login_tokens WHERE expires_at < :before")


def find(tx: Tx, identity: str) -> Person | None:
    """The person an identity is linked to."""
    row = tx.query(_BY_IDENTITY, {"identity": identity}).fetchone()
    return None if row is None else PEOPLE.load(row, tx.pg)


def get(tx: Tx, person_id: str) -> Person:
    """One person. Raises NotFound."""
    row = tx.query(_BY_ID, {"id": person_id}).fetchone()
    if row is None:
        raise NotFound(f"person {person_id} not found")
    return PEOPLE.load(row, tx.pg)


def listing(tx: Tx) -> list[Person]:
    """Every person, oldest first."""
    return PEOPLE.load_all(tx.query(_ALL).fetchall(), tx.pg)


def link(tx: Tx, person: Person, audit: list[AuditDraft]) -> Person:
    """Insert a person, or add identities to a stored one, with the audit events."""
    row = tx.query(_LOCK_BY_ID, {"id": person.id}).fetchone()
    stored = None if row is None else PEOPLE.load(row, tx.pg)
    for identity in person.identities:
        owner = tx.query(_OWNER, {"identity": identity}).fetchone()
        if owner is not None and owner[0] != person.id:
            raise Conflict(f"{identity} already belongs to person {owner[0]}")
    head = _audit.lock_head(tx, audit)
    if stored is None:
        if tx.query(_INSERT_PERSON, PEOPLE.params(person, tx.pg)).fetchone() is None:
            raise Conflict(f"person {person.id} already exists")
        added = person.identities
        result = person
    else:
        added = [i for i in person.identities if i not in stored.identities]
        result = stored.model_copy(
            update={"identities": [*stored.identities, *added], "name": person.name or stored.name}
        )
        params = {"id": result.id, "name": result.name, "identities": dumps_json(result.identities)}
        tx.run(_UPDATE_PERSON, params)
    for identity in added:
        # another transaction may have linked it since the check above
        if tx.query(_INSERT_IDENTITY, {"identity": identity, "person_id": person.id}).fetchone() is None:
            raise Conflict(f"{identity} already belongs to another person")
    _audit.append(tx, audit, head)
    return result


def prefer(tx: Tx, person_id: str, prefers: str | None, audit: list[AuditDraft]) -> Person:
    """Record the channel a person prefers, with the audit events. Raises NotFound."""
    head = _audit.lock_head(tx, audit)
    row = tx.query(_PREFER, {"id": person_id, "prefers": prefers}).fetchone()
    if row is None:
        raise NotFound(f"person {person_id} not found")
    _audit.append(tx, audit, head)
    return PEOPLE.load(row, tx.pg)


def decisions_by(tx: Tx, actors: list[str], limit: int) -> list[Decision]:
    """The newest decisions made by one of ``actors``, newest first."""
    if not actors:
        return []
    names = [f"a{i}" for i in range(len(actors))]
    params: dict[str, object] = {"limit": limit, **dict(zip(names, actors, strict=True))}
    sql = DECISIONS.select(
        f"WHERE actor IN ({', '.join(':' + n for n in names)}) ORDER BY pk DESC LIMIT :limit"
    )
    return DECISIONS.load_all(tx.query(sql, params).fetchall(), tx.pg)


def add_session(tx: Tx, session: ConsoleSession, audit: list[AuditDraft]) -> None:
    """Insert a session with its audit events (and forget login tokens expired a day ago)."""
    head = _audit.lock_head(tx, audit)
    if tx.query(_INSERT_SESSION, SESSIONS.params(session, tx.pg)).fetchone() is None:
        raise Conflict("this session already exists")
    tx.run(_FORGET_TOKENS, {"before": bind_when(session.created_at - timedelta(days=1), tx.pg)})
    _audit.append(tx, audit, head)


def get_session(tx: Tx, session_id: str) -> ConsoleSession | None:
    """A session by id."""
    row = tx.query(_SESSION, {"id": session_id}).fetchone()
    return None if row is None else SESSIONS.load(row, tx.pg)


def touch_session(tx: Tx, session_id: str, at: datetime) -> None:
    """Move a live session's last activity to ``at``."""
    tx.run(_TOUCH, {"id": session_id, "at": bind_when(at, tx.pg)})


def end_session(tx: Tx, session_id: str, at: datetime, audit: list[AuditDraft]) -> None:
    """End a live session, with the audit events; nothing for an ended or unknown one."""
    ended = tx.query(_END, {"id": session_id, "at": bind_when(at, tx.pg)}).fetchone()
    if ended is not None:
        _audit.append(tx, audit)


def add_token(tx: Tx, token: LoginToken) -> None:
    """Insert a login token. Raises Conflict when its id exists."""
    if tx.query(_INSERT_TOKEN, TOKENS.params(token, tx.pg)).fetchone() is None:
        raise Conflict("this login token already exists")


def use_token(tx: Tx, token_id: str, at: datetime) -> LoginToken | None:
    """Compare-and-set: mark an unused, unexpired token used and return it."""
    row = tx.query(_USE, {"id": token_id, "at": bind_when(at, tx.pg)}).fetchone()
    return None if row is None else TOKENS.load(row, tx.pg)
