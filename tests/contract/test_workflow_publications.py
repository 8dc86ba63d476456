"""RunStore contract: numbered workflow versions (publish, republish, rollback, races), and the
0006 migration numbering the sources stored before it, on every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from alembic import command

from engine.model import WorkflowPublication, WorkflowVersion
from engine.ports import RunStore
from storage import create_store
from storage._migrate import alembic_config
from tests.contract._data import T0
from tests.contract.conftest import Backend


def _source(wf_id: str, text: str, minutes: int = 0) -> WorkflowVersion:
    return WorkflowVersion(
        workflow_id=wf_id,
        content_hash=f"{wf_id}-{text}",
        source=f"id: {wf_id}\ntitle: {text}\n",
        path=f"workflows/{wf_id}.yml",
        created_at=T0 + timedelta(minutes=minutes),
    )


async def test_each_new_source_takes_the_next_number(store: RunStore) -> None:
    first, created = await store.publish_version(
        _source("refund", "a"), label="1.0", note="file", actor="ann"
    )
    assert created
    assert first == WorkflowPublication(
        workflow_id="refund",
        version=1,
        content_hash="refund-a",
        label="1.0",
        note="file",
        actor="ann",
        published_at=T0,
    )
    again, created = await store.publish_version(
        _source("refund", "a", 1), label="", note="file", actor="bob"
    )
    assert (again, created) == (first, False)
    second, created = await store.publish_version(
        _source("refund", "b", 2), label="", note="publish", actor="ann"
    )
    assert (second.version, second.content_hash, created) == (2, "refund-b", True)
    # an older source again (a rollback) is a new number pointing at the same stored source
    third, created = await store.publish_version(
        _source("refund", "a", 3), label="1.0", note="rollback to v1", actor="cy"
    )
    assert (third.version, third.content_hash, third.note, created) == (3, "refund-a", "rollback to v1", True)
    assert (await store.get_workflow_version("refund-a")).source == "id: refund\ntitle: a\n"
    other, _ = await store.publish_version(_source("wire", "x"), label="", note="file", actor="ann")
    assert other.version == 1

    mine = await store.list_publications("refund")
    assert [(p.version, p.content_hash) for p in mine] == [(1, "refund-a"), (2, "refund-b"), (3, "refund-a")]
    assert mine[1].published_at == T0 + timedelta(minutes=2)
    everything = await store.list_publications()
    assert [(p.workflow_id, p.version) for p in everything] == [
        ("refund", 1),
        ("refund", 2),
        ("refund", 3),
        ("wire", 1),
    ]
    assert await store.list_publications("nobody") == []


async def test_a_publish_on_purpose_is_audited_with_its_number(store: RunStore) -> None:
    await store.publish_version(_source("refund", "a"), label="", note="file", actor="signoff")
    assert await store.audit_events() == []  # a file loaded: recorded as a version, not audited
    pub, _ = await store.publish_version(
        _source("refund", "b", 1), label="2.0", note="publish", actor="ann", channel="cli"
    )
    _, created = await store.publish_version(
        _source("refund", "b", 2), label="2.0", note="publish", actor="ann", channel="cli"
    )
    assert not created
    [event] = await store.audit_events()
    assert (event.kind, event.actor, event.channel, event.at, event.run_id) == (
        "workflow.published",
        "ann",
        "cli",
        pub.published_at,
        None,
    )
    assert event.payload == {
        "workflow_id": "refund",
        "version": 2,
        "content_hash": "refund-b",
        "label": "2.0",
        "note": "publish",
    }
    assert await store.audit_head() == (1, event.hash)


async def test_processes_publishing_one_source_at_once_number_it_once(backend: Backend) -> None:
    stores = [backend.store, backend.another(), backend.another(), backend.another()]
    await backend.store.publish_version(_source("refund", "a"), label="", note="file", actor="x")
    for round_ in range(1, 11):
        # every process sees the same new file at the same moment
        results = await asyncio.gather(
            *(
                s.publish_version(
                    _source("refund", f"r{round_}", round_), label="", note="file", actor=f"p{i}"
                )
                for i, s in enumerate(stores)
            )
        )
        assert sorted(created for _, created in results) == [False, False, False, True]
        assert {pub.version for pub, _ in results} == {round_ + 1}
    assert [p.version for p in await backend.store.list_publications("refund")] == list(range(1, 12))


async def test_different_sources_published_at_once_take_distinct_numbers(backend: Backend) -> None:
    stores = [backend.store, backend.another(), backend.another(), backend.another()]
    for round_ in range(5):
        # each process publishes its own text at the same moment: the numbers stay 1, 2, 3...
        results = await asyncio.gather(
            *(
                s.publish_version(
                    _source("refund", f"r{round_}p{i}", round_), label="", note="file", actor=f"p{i}"
                )
                for i, s in enumerate(stores)
            )
        )
        assert all(created for _, created in results)
    numbers = [p.version for p in await backend.store.list_publications("refund")]
    assert numbers == list(range(1, 21))
    hashes = {p.content_hash for p in await backend.store.list_publications("refund")}
    assert len(hashes) == 20


async def test_migration_numbers_the_sources_stored_before_it(empty_url: str) -> None:
    engine = sa.create_engine(empty_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0005")  # the schema before numbered versions
            for wf_id, text, minutes in [("refund", "b", 5), ("refund", "a", 1), ("wire", "x", 2)]:
                v = _source(wf_id, text, minutes)
                conn.execute(
                    sa.text(
                        "INSERT INTO workflow_versions (content_hash, workflow_id, source, path, created_at)"
                        " VALUES (:h, :w, :s, :p, :c)"
                    ),
                    {"h": v.content_hash, "w": wf_id, "s": v.source, "p": v.path, "c": v.created_at},
                )
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
    finally:
        engine.dispose()
    store = create_store(empty_url)
    try:
        found = await store.list_publications()
        assert [(p.workflow_id, p.version, p.content_hash) for p in found] == [
            ("refund", 1, "refund-a"),
            ("refund", 2, "refund-b"),
            ("wire", 1, "wire-x"),
        ]
        assert found[1].published_at == T0 + timedelta(minutes=5)
        assert found[0].note == "stored before numbered versions"
        nxt, created = await store.publish_version(
            _source("refund", "c", 9), label="", note="file", actor="a"
        )
        assert (nxt.version, created) == (3, True)
    finally:
        await store.close()
