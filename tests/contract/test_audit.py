"""RunStore contract: the audit hash chain, its queries, and tampering under the store."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy.engine import make_url

from engine.audit import GENESIS_HASH, event_hash, verify_chain
from engine.model import AuditEvent, DeliveryStatus
from engine.ports import CheckpointUpdate, RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import T0, at
from tests.contract.conftest import Backend


async def _history(store: RunStore) -> None:
    """Five events: created, step, checkpoint opened, resolved, delivery sent."""
    lease = await d.started(store)
    await store.commit(lease, RunChange(at=at(1), steps=[d.step()], audit=[d.draft(when=at(1))]))
    await store.commit(
        lease,
        RunChange(
            at=at(2),
            checkpoints=[d.checkpoint()],
            deliveries=[d.delivery()],
            audit=[
                d.draft("checkpoint.opened", when=at(2), checkpoint_id="cp_1", payload={"shown": "f" * 64})
            ],
        ),
    )
    await store.update_checkpoint(
        CheckpointUpdate(
            checkpoint_id="cp_1",
            expected_version=0,
            at=at(3),
            resolve=True,
            decision=d.decision(),
            audit=[d.draft("checkpoint.resolved", when=at(3), actor="U1", payload={"when": at(3), "n": 1.5})],
        )
    )
    await store.mark_delivery(
        "dl_1",
        status=DeliveryStatus.sent,
        attempts=1,
        next_attempt_at=at(4),
        audit=[d.draft("delivery.sent", when=at(4), run_id=None)],
    )


async def test_an_empty_chain_starts_at_genesis(store: RunStore) -> None:
    assert await store.audit_head() == (0, GENESIS_HASH)
    assert await store.audit_events() == []
    assert verify_chain([], await store.audit_head()).ok


async def test_the_store_chains_every_event(store: RunStore) -> None:
    await _history(store)
    events = await store.audit_events()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert await store.audit_head() == (5, events[-1].hash)
    report = verify_chain(events, await store.audit_head())
    assert report.ok, report.problem
    assert report.checked == 5
    assert events[3].payload == {"when": "2026-01-01T09:00:03.000000Z", "n": 1.5}
    assert events[3].at == at(3)
    assert events[3].at.tzinfo is not None


async def test_audit_queries_filter_by_run_time_and_seq(store: RunStore) -> None:
    await _history(store)
    assert [e.seq for e in await store.audit_events(run_id="run_1")] == [1, 2, 3, 4]
    assert [e.seq for e in await store.audit_events(since=at(3))] == [4, 5]
    assert [e.seq for e in await store.audit_events(after_seq=3)] == [4, 5]
    assert [e.seq for e in await store.audit_events(run_id="run_1", since=at(1), after_seq=2)] == [3, 4]


# --------------------------------------------------------------------------- tampering

Sql = Callable[[str, tuple[object, ...]], None]


def _raw(backend: Backend) -> Sql:
    """Run SQL with the plain driver, under the store (as an attacker with DB access would)."""
    assert backend.url is not None
    url = make_url(backend.url)

    def run(statement: str, params: tuple[object, ...] = ()) -> None:
        if backend.name == "sqlite":
            # SQLite keeps UTC times as text without an offset
            params = tuple(
                p.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(p, datetime) else p
                for p in params
            )
            conn = sqlite3.connect(str(url.database))
            with conn:
                conn.execute(statement, params)
            conn.close()
        else:
            libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(libpq) as pg:
                pg.execute(statement.replace("?", "%s"), params)

    return run


async def _verify(store: RunStore) -> tuple[int | None, str | None]:
    report = verify_chain(await store.audit_events(), await store.audit_head())
    assert not report.ok
    return report.first_bad_seq, report.problem


async def test_tampering_with_an_event_is_found(sql_backend: Backend) -> None:
    await _history(sql_backend.store)
    _raw(sql_backend)("UPDATE audit_events SET actor = ? WHERE seq = 3", ("mallory",))
    bad, problem = await _verify(sql_backend.store)
    assert bad == 3
    assert "modified" in str(problem)


async def test_tampering_with_a_payload_is_found(sql_backend: Backend) -> None:
    await _history(sql_backend.store)
    _raw(sql_backend)("UPDATE audit_events SET payload = ? WHERE seq = 4", ('{"when":"x","n":1.5}',))
    assert (await _verify(sql_backend.store))[0] == 4


async def test_deleting_an_event_is_found(sql_backend: Backend) -> None:
    await _history(sql_backend.store)
    _raw(sql_backend)("DELETE FROM audit_events WHERE seq = 3", ())
    bad, problem = await _verify(sql_backend.store)
    assert bad == 3
    assert "missing" in str(problem)


async def test_deleting_the_last_events_is_found_through_the_head(sql_backend: Backend) -> None:
    await _history(sql_backend.store)
    _raw(sql_backend)("DELETE FROM audit_events WHERE seq >= 4", ())
    bad, problem = await _verify(sql_backend.store)
    assert bad == 4
    assert "recorded head" in str(problem)


async def test_inserting_a_well_formed_event_is_found(sql_backend: Backend) -> None:
    store = sql_backend.store
    await _history(store)
    events = await store.audit_events()
    sql = _raw(sql_backend)
    # make room at seq 3, then forge an event that links correctly to event 2
    sql("UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3", ())
    sql("UPDATE audit_events SET seq = seq - 99 WHERE seq >= 100", ())
    forged = AuditEvent(
        seq=3, at=at(2), actor="mallory", channel="slack", kind="x", prev_hash=events[1].hash, hash=""
    )
    digest = event_hash(**forged.model_dump(exclude={"hash"}))
    sql(
        "INSERT INTO audit_events (seq, at, actor, channel, kind, payload, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (3, at(2), "mallory", "slack", "x", "{}", events[1].hash, digest),
    )
    bad, problem = await _verify(store)
    assert bad == 4  # the forged event is self-consistent; the next one no longer links to it
    assert "does not link" in str(problem)


async def test_appending_outside_the_store_is_found(sql_backend: Backend) -> None:
    store = sql_backend.store
    await _history(store)
    last = (await store.audit_events())[-1]
    digest = event_hash(
        seq=6,
        at=T0,
        actor="m",
        channel="c",
        kind="k",
        run_id=None,
        checkpoint_id=None,
        payload={},
        prev_hash=last.hash,
    )
    _raw(sql_backend)(
        "INSERT INTO audit_events (seq, at, actor, channel, kind, payload, prev_hash, hash)"
        " VALUES (6, ?, 'm', 'c', 'k', '{}', ?, ?)",
        (T0, last.hash, digest),
    )
    bad, problem = await _verify(store)
    assert bad is not None
    assert bad > 5
    assert "recorded head" in str(problem)


async def test_swapping_two_events_is_found(sql_backend: Backend) -> None:
    await _history(sql_backend.store)
    sql = _raw(sql_backend)
    sql("UPDATE audit_events SET seq = -2 WHERE seq = 2", ())
    sql("UPDATE audit_events SET seq = 2 WHERE seq = 3", ())
    sql("UPDATE audit_events SET seq = 3 WHERE seq = -2", ())
    bad, problem = await _verify(sql_backend.store)
    assert bad == 2
    assert "does not link" in str(problem)


@pytest.mark.parametrize("seq", [1, 5])
async def test_tampering_at_either_end_is_found(sql_backend: Backend, seq: int) -> None:
    await _history(sql_backend.store)
    _raw(sql_backend)("UPDATE audit_events SET kind = 'edited' WHERE seq = ?", (seq,))
    assert (await _verify(sql_backend.store))[0] == seq
