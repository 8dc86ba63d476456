"""Group commit on SQLite: calls queued behind a running one share one transaction.

Each call runs in its own savepoint: a call that fails leaves the others' writes in place and
gets its own error; the group's transaction failing fails every call in it; no caller hears
back before the group's COMMIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import Conflict
from storage._db import GROUP_MAX, Database, StorageError, Tx
from storage._sql import Sql

_INSERT = Sql("INSERT INTO t (k) VALUES (:k)")
_KEYS = Sql("SELECT k FROM t ORDER BY k")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'group.db'}")
    database.call(lambda tx: tx.execute(sa.text("CREATE TABLE t (k TEXT PRIMARY KEY)")), write=True)
    yield database
    await database.close()


def _insert(key: str, *, then: Callable[[Tx], Any] | None = None) -> Callable[[Tx], str]:
    def work(tx: Tx) -> str:
        tx.run(_INSERT, {"k": key})
        if then is not None:
            then(tx)
        return key

    return work


def _keys(tx: Tx) -> list[str]:
    return [k for (k,) in tx.query(_KEYS).fetchall()]


def _committed(db: Database) -> list[str]:
    """What another connection sees: only committed rows."""
    path = db.url.database
    assert path is not None
    with sqlite3.connect(path) as other:
        return [k for (k,) in other.execute("SELECT k FROM t ORDER BY k")]


@contextlib.asynccontextmanager
async def _thread_held(db: Database, *, by_read: bool = False) -> AsyncIterator[None]:
    """The database thread busy in one call until the block ends: calls made inside the block
    queue behind it and are taken together when it lets go."""
    entered, release = threading.Event(), threading.Event()

    def hold(tx: Tx) -> None:
        entered.set()
        assert release.wait(30), "the test never released the database thread"

    held = asyncio.ensure_future((db.read if by_read else db.write)(hold))
    assert await asyncio.to_thread(entered.wait, 30)
    try:
        yield
        await asyncio.sleep(0)  # every call is queued before the thread is free again
    finally:
        release.set()
        await held


async def _queued_behind_a_held_call(db: Database, works: list[Callable[[Tx], Any]]) -> list[Any]:
    """Hold the database thread in one call, queue ``works`` behind it, then let it go."""
    async with _thread_held(db):
        calls = [asyncio.ensure_future(db.write(w)) for w in works]
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_calls_queued_together_share_one_commit(db: Database) -> None:
    before = db.commits.transactions
    results = await _queued_behind_a_held_call(db, [_insert(f"k{i}") for i in range(6)])
    assert results == [f"k{i}" for i in range(6)], "each caller gets its own result, in order"
    assert _committed(db) == [f"k{i}" for i in range(6)]
    assert db.commits.transactions - before == 2, "the held call alone, then the six together"
    assert db.commits.largest == 6


async def test_a_failing_call_rolls_back_only_its_own_writes(db: Database) -> None:
    def refuse(tx: Tx) -> None:
        raise Conflict("lease lost")

    works = [_insert("a"), _insert("b", then=refuse), _insert("a"), _insert("c")]
    results = await _queued_behind_a_held_call(db, works)
    assert results[0] == "a"
    assert isinstance(results[1], Conflict)
    assert "lease lost" in str(results[1])
    assert isinstance(results[2], Conflict), "duplicate key"
    assert "already stored" in str(results[2])
    assert results[3] == "c"
    assert _committed(db) == ["a", "c"], "b's insert was undone with its savepoint; a's stayed"


async def test_a_failed_group_transaction_fails_every_call_in_it(db: Database) -> None:
    def end_the_transaction(tx: Tx) -> None:
        tx.raw.execute("ROLLBACK")  # what an I/O error or a full disk does to SQLite

    works = [_insert("a"), _insert("b", then=end_the_transaction), _insert("c")]
    results = await _queued_behind_a_held_call(db, works)
    assert all(isinstance(r, StorageError) for r in results), results
    assert _committed(db) == [], "a's write, done before the failure, is not acknowledged nor kept"
    assert await db.write(_insert("d")) == "d", "the thread goes on after a failed group"
    assert _committed(db) == ["d"]


async def test_no_caller_hears_back_before_the_group_commits(db: Database) -> None:
    inside, finish = threading.Event(), threading.Event()

    def slow(tx: Tx) -> None:
        inside.set()
        assert finish.wait(30)

    async def scenario() -> list[Any]:
        return await _queued_behind_a_held_call(db, [_insert("early"), _insert("late", then=slow)])

    group = asyncio.ensure_future(scenario())
    assert await asyncio.to_thread(inside.wait, 30)
    # "early" is done and its savepoint released, but the group has not committed yet
    await asyncio.sleep(0.2)
    assert not group.done()
    assert _committed(db) == []
    finish.set()
    assert await group == ["early", "late"]
    assert _committed(db) == ["early", "late"]


async def test_reads_group_with_reads_and_see_the_writes_queued_before_them(db: Database) -> None:
    async with _thread_held(db):
        before = db.commits.transactions
        calls = [
            asyncio.ensure_future(db.write(_insert("x"))),
            asyncio.ensure_future(db.read(_keys)),
            asyncio.ensure_future(db.read(_keys)),
        ]
    assert await asyncio.gather(*calls) == ["x", ["x"], ["x"]]
    assert db.commits.transactions - before == 3, "held call, the write, the two reads together"


async def test_a_read_never_waits_for_a_write_lock_it_was_grouped_into(tmp_path: Path) -> None:
    """Alone, a read does not wait for another process's write lock (WAL, deferred BEGIN). Queued
    behind a write, it must not join that write's group, whose BEGIN IMMEDIATE would wait for
    the lock and fail with it."""
    db = Database(f"sqlite:///{tmp_path / 'locked.db'}", busy_timeout_ms=200)
    db.call(lambda tx: tx.execute(sa.text("CREATE TABLE t (k TEXT PRIMARY KEY)")), write=True)
    path = db.url.database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing (a purge, a migration)
    try:
        async with _thread_held(db, by_read=True):
            write = asyncio.ensure_future(db.write(_insert("x")))
            read = asyncio.ensure_future(db.read(_keys))
        results = await asyncio.gather(write, read, return_exceptions=True)
        assert isinstance(results[0], StorageError), "the write waits for the lock and gives up"
        assert results[1] == [], "the read answers from its snapshot"
    finally:
        other.rollback()
        other.close()
        await db.close()


async def test_stopping_with_calls_queued_runs_them_and_ends_the_thread(tmp_path: Path) -> None:
    """The stop signal queued behind calls a group collects is kept, not dropped: before, the
    thread then waited for more work forever and ``shutdown`` never returned."""
    db = Database(f"sqlite:///{tmp_path / 'stop.db'}")
    db.call(lambda tx: tx.execute(sa.text("CREATE TABLE t (k TEXT PRIMARY KEY)")), write=True)
    closing = threading.Thread(target=db.shutdown, daemon=True)
    async with _thread_held(db):
        calls = [asyncio.ensure_future(db.write(_insert(k))) for k in ("a", "b")]
        await asyncio.sleep(0)
        closing.start()  # queues the stop behind a and b
        await _until(lambda: db._workers.queued() >= 3)
    assert await asyncio.gather(*calls) == ["a", "b"]
    await asyncio.to_thread(closing.join, 30)
    assert not closing.is_alive(), "Database.shutdown() hangs"


async def _until(condition: Callable[[], bool], within_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_group_takes_at_most_group_max_calls(db: Database) -> None:
    results = await _queued_behind_a_held_call(db, [_insert(f"k{i:03}") for i in range(GROUP_MAX + 5)])
    assert len(results) == GROUP_MAX + 5
    assert db.commits.largest == GROUP_MAX
    assert len(_committed(db)) == GROUP_MAX + 5
