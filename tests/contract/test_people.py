"""PeopleStore contract: people and their identities, console sessions, single-use login tokens."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine.audit import verify_chain
from engine.errors import Conflict, NotFound
from engine.people import ConsoleSession, LoginToken, PeopleStore, Person
from engine.ports import AuditDraft, RunStore
from tests.contract._data import T0, at


def _people(store: RunStore) -> PeopleStore:
    assert isinstance(store, PeopleStore)
    return store


def _draft(kind: str) -> AuditDraft:
    return AuditDraft(at=T0, actor="U_ANN", channel="web", kind=kind)


async def test_identities_link_to_one_person(store: RunStore) -> None:
    people = _people(store)
    ann = Person(id="per_1", name="Ann", identities=["user:U_ANN"], created_at=T0)
    assert await people.link_person(ann, [_draft("person.linked")]) == ann
    linked = await people.link_person(
        Person(id="per_1", identities=["email:ann@corp.example", "user:U_ANN"], created_at=T0),
        [_draft("person.linked")],
    )
    assert linked.identities == ["user:U_ANN", "email:ann@corp.example"]
    assert linked.name == "Ann"
    assert await people.find_person("email:ann@corp.example") == linked
    assert await people.find_person("user:U_ANN") == linked
    assert await people.find_person("email:bob@corp.example") is None
    assert await people.get_person("per_1") == linked
    with pytest.raises(NotFound):
        await people.get_person("per_2")
    bob = Person(id="per_2", identities=["email:bob@corp.example", "user:U_ANN"], created_at=T0)
    with pytest.raises(Conflict, match="user:U_ANN"):
        await people.link_person(bob, [_draft("person.linked")])
    assert await people.find_person("email:bob@corp.example") is None  # nothing of it was kept
    assert [p.id for p in await people.list_people()] == ["per_1"]
    events = await store.audit_events()
    assert [e.kind for e in events] == ["person.linked", "person.linked"]
    assert verify_chain(events, await store.audit_head()).ok


async def test_a_person_prefers_a_channel_and_keeps_it_when_linked(store: RunStore) -> None:
    people = _people(store)
    await people.link_person(Person(id="per_1", identities=["user:U_ANN"], created_at=T0), [])
    got = await people.set_preference("per_1", "email", [_draft("person.prefers")])
    assert got.prefers == "email"
    linked = await people.link_person(
        Person(id="per_1", identities=["email:ann@corp.example"], created_at=T0), [_draft("person.linked")]
    )
    assert linked.prefers == "email"
    assert (await people.find_person("email:ann@corp.example")) == linked
    assert (await people.set_preference("per_1", None, [])).prefers is None
    with pytest.raises(NotFound):
        await people.set_preference("per_2", "slack", [_draft("person.prefers")])
    events = await store.audit_events()
    assert [e.kind for e in events] == ["person.prefers", "person.linked"]
    assert verify_chain(events, await store.audit_head()).ok


def _session(sid: str) -> ConsoleSession:
    return ConsoleSession(
        id=sid, person_id="per_1", provider="oidc", created_at=T0, seen_at=T0, expires_at=at(3600)
    )


async def test_sessions_are_touched_and_ended_once(store: RunStore) -> None:
    people = _people(store)
    await people.add_session(_session("s1"), [_draft("console.signed_in")])
    with pytest.raises(Conflict):
        await people.add_session(_session("s1"), [])
    await people.touch_session("s1", at(60))
    await people.touch_session("s1", at(30))  # never backwards
    found = await people.get_session("s1")
    assert found is not None
    assert found.seen_at == at(60)
    assert found.ended_at is None
    await people.end_session("s1", at(90), [_draft("console.signed_out")])
    await people.end_session("s1", at(95), [_draft("console.signed_out")])
    await people.touch_session("s1", at(120))
    ended = await people.get_session("s1")
    assert ended is not None
    assert ended.ended_at == at(90)
    assert ended.seen_at == at(60)
    assert await people.get_session("nope") is None
    assert [e.kind for e in await store.audit_events()] == ["console.signed_in", "console.signed_out"]


async def test_a_login_token_is_used_once_and_not_after_it_expires(store: RunStore) -> None:
    people = _people(store)
    token = LoginToken(
        id="t1", kind="email", data={"email": "ann@corp.example"}, created_at=T0, expires_at=at(900)
    )
    await people.add_login_token(token)
    await people.add_login_token(token.model_copy(update={"id": "t2"}))
    with pytest.raises(Conflict):
        await people.add_login_token(token)
    used = await people.use_login_token("t1", at(60))
    assert used is not None
    assert used.used_at == at(60)
    assert used.data == {"email": "ann@corp.example"}
    assert await people.use_login_token("t1", at(61)) is None
    assert await people.use_login_token("t2", at(900)) is None  # expired
    assert await people.use_login_token("t3", at(1)) is None


async def test_two_processes_using_one_token_get_it_once(backend: object) -> None:
    from tests.contract.conftest import Backend

    assert isinstance(backend, Backend)
    first, second = _people(backend.store), _people(backend.another())
    token = LoginToken(id="t1", kind="email", created_at=T0, expires_at=T0 + timedelta(minutes=15))
    await first.add_login_token(token)
    got = await asyncio.gather(first.use_login_token("t1", at(1)), second.use_login_token("t1", at(1)))
    assert sorted(g is not None for g in got) == [False, True]


async def test_decisions_by_a_persons_actor_ids_newest_first(store: RunStore) -> None:
    from engine.model import CheckpointOutcome, RunStatus
    from engine.ports import CheckpointUpdate, RunChange
    from tests.contract import _data as d

    lease = await d.started(store)
    cps = [d.checkpoint(f"cp_{i}") for i in range(3)]
    change = RunChange(
        at=at(1), checkpoints=cps, pending_remove=["draft"], status=RunStatus.waiting, release=True
    )
    await store.commit(lease, change)
    for i, actor in enumerate(["U_ANN", "U_BOB", "email:ann@corp.example"]):
        decision = d.decision(f"dec_{i}", actor=actor, checkpoint_id=f"cp_{i}", created_at=at(10 + i))
        update = CheckpointUpdate(
            checkpoint_id=f"cp_{i}",
            expected_version=0,
            at=at(10 + i),
            resolve=True,
            outcome=CheckpointOutcome.approved,
            decision=decision,
        )
        await store.update_checkpoint(update)
    people = _people(store)
    ann = await people.decisions_by(["U_ANN", "email:ann@corp.example"])
    assert [x.id for x in ann] == ["dec_2", "dec_0"]
    assert [x.id for x in await people.decisions_by(["U_ANN", "email:ann@corp.example"], limit=1)] == [
        "dec_2"
    ]
    assert await people.decisions_by([]) == []


async def test_two_processes_linking_one_identity_to_two_people_one_wins(backend: object) -> None:
    from tests.contract.conftest import Backend

    assert isinstance(backend, Backend)
    first, second = _people(backend.store), _people(backend.another())
    a = Person(id="per_a", identities=["email:ann@corp.example"], created_at=T0)
    b = Person(id="per_b", identities=["email:ann@corp.example"], created_at=T0)
    got = await asyncio.gather(first.link_person(a, []), second.link_person(b, []), return_exceptions=True)
    assert sorted(type(g).__name__ for g in got) == ["Conflict", "Person"]
    winner = await first.find_person("email:ann@corp.example")
    assert winner is not None
    assert [p.id for p in await second.list_people()] == [winner.id]  # the loser left nothing behind
    assert await first.use_login_token("none", at(1)) is None  # both stores still work
    assert await second.use_login_token("none", at(1)) is None
