"""Engines, threads and transactions: one executor hop and one transaction per store call.

Every database thread keeps one connection for its lifetime. A call's work runs in one
transaction on it, framed one of two ways:

* driver framing (the default): the work sends fixed SQL through ``Tx.query/run/many``
  straight to sqlite3 or psycopg. On PostgreSQL the whole transaction runs in pipeline mode,
  so statements whose results are not needed yet travel together: a step commit is two round
  trips (lock and read; write and commit) instead of one per statement.
* Core framing (``core=True``): SQLAlchemy's transaction, for work that executes Core
  statements (``Tx.execute``): migrations and the less frequent queries. Driver statements
  may be mixed in.

SQLite: one thread (WAL, synchronous=NORMAL, busy_timeout); writes start with
``BEGIN IMMEDIATE`` so a read-modify-write is serialised against other processes too.
Group commit: when driver-framed calls queue up behind a running one (many runs at once), the
thread takes up to ``GROUP_MAX`` of them (writes with writes, reads with reads: a read never
waits for the write lock) and runs them in one transaction, each inside its own
``SAVEPOINT``. A call that fails rolls back to its savepoint and gets its error; the others go
on. One ``COMMIT`` ends the group, and only then does any caller get its result, so nothing is
acknowledged before it is durable. If the group's transaction itself fails (BEGIN, COMMIT, a
rollback to a savepoint), every call in it gets that error, as each would have alone.
PostgreSQL: ``pool_size`` threads; writes lock the rows they read-modify-write with
``SELECT ... FOR UPDATE`` (``Sql(..., lock=True)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from functools import partial
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url

from engine.errors import Conflict, EngineError
from storage._errors import StorageError
from storage._sql import Sql, dumps_json
from storage._wal import WRITER_AUTOCHECKPOINT_PAGES, WalCheckpointer

__all__ = ["Database", "StorageError", "Tx"]

T = TypeVar("T")

_BEGIN = "signoff_begin"
# the most calls one SQLite transaction takes in a group commit: bounds how long the first
# caller of a group waits for the last one's work (a call is ~0.1-0.3 ms)
GROUP_MAX = 32
# a PostgreSQL connection idle for longer is pinged before use (a restarted server or a
# dropped socket then costs a reconnect, not a failed call)
_PING_AFTER_S = 10.0


class Tx:
    """One open transaction, handed to the synchronous functions that do a store call's work."""

    __slots__ = ("conn", "core", "cursors", "pg", "raw")

    def __init__(self, conn: sa.Connection, raw: Any, pg: bool, core: bool) -> None:
        self.conn = conn
        self.raw = raw
        self.pg = pg
        self.core = core
        # SQLite: a statement left unfinished keeps its read snapshot after COMMIT, and the
        # next BEGIN IMMEDIATE on this connection would then fail at once with "locked"
        self.cursors: list[Any] = []

    def execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        """Execute a Core statement with optional parameters (a dict, or a list: executemany)."""
        if not self.core:
            raise StorageError("Core statement in a driver-framed transaction: pass core=True")
        return self.conn.execute(statement, params)

    def lock(self, statement: sa.Select[Any]) -> sa.Select[Any]:
        """``statement`` with ``FOR UPDATE`` on PostgreSQL (SQLite's ``BEGIN IMMEDIATE`` already
        holds the database's write lock)."""
        return statement.with_for_update() if self.pg else statement

    def query(self, sql: Sql, params: Mapping[str, Any] | None = None) -> Any:
        """Send ``sql``; returns the DBAPI cursor to fetch from (on PostgreSQL the fetch, not the
        send, waits for the server, so queries sent one after another share a round trip)."""
        if self.pg:
            return self.raw.execute(sql.pg, params or ())
        cursor = self.raw.execute(sql.lite, params or ())
        self.cursors.append(cursor)
        return cursor

    def run(self, sql: Sql, params: Mapping[str, Any] | None = None) -> None:
        """Send ``sql`` without reading a result."""
        self.raw.execute(sql.pg if self.pg else sql.lite, params or ())

    def many(self, sql: Sql, rows: Iterable[Mapping[str, Any]]) -> None:
        """Send ``sql`` once per parameter set."""
        if self.pg:
            self.raw.cursor().executemany(sql.pg, rows)
        else:
            self.raw.executemany(sql.lite, rows)

    def snapshot(self) -> None:
        """Make every later read of this transaction see one snapshot (SQLite reads always do)."""
        if self.pg:
            self.raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


class _Held:
    """A database thread's connection: SQLAlchemy's wrapper and the driver connection under it."""

    __slots__ = ("conn", "raw", "used")

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.raw: Any = conn.connection.driver_connection
        self.used = time.monotonic()

    def usable(self) -> bool:
        return not (
            self.conn.closed
            or self.conn.invalidated
            or getattr(self.raw, "closed", False)
            or getattr(self.raw, "broken", False)
        )


class Database:
    """An engine plus the threads that run its transactions off the event loop."""

    def __init__(self, url: str | URL, *, pool_size: int = 4, busy_timeout_ms: int = 5000) -> None:
        self.url = make_url(url)
        backend = self.url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise StorageError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")
        self.pg = backend == "postgresql"
        self._local = threading.local()
        self._held: list[_Held] = []
        self._wal: WalCheckpointer | None = None
        self._lock = threading.Lock()
        if self.pg:
            import psycopg

            self._driver_errors: tuple[type[Exception], type[Exception]] = (
                psycopg.IntegrityError,
                psycopg.Error,
            )
            self.engine = sa.create_engine(
                self.url, json_serializer=dumps_json, pool_size=pool_size, max_overflow=0, pool_pre_ping=True
            )
            workers = pool_size
        else:
            self._driver_errors = (sqlite3.IntegrityError, sqlite3.Error)
            self.engine = sa.create_engine(
                self.url, json_serializer=dumps_json, connect_args={"check_same_thread": False}
            )
            _configure_sqlite(self.engine, busy_timeout_ms)
            workers = 1
            path = self.url.database
            if path and path != ":memory:" and not path.startswith("file:"):
                self._wal = WalCheckpointer(path)
        self._workers = _Workers(workers, f"signoff-{backend}", self._group, 1 if self.pg else GROUP_MAX)
        self._closed = False
        self.commits = CommitStats()

    async def write(self, work: Callable[[Tx], T], *, core: bool = False) -> T:
        """Run ``work`` in one write transaction on a database thread."""
        return await self._hop(work, True, core)

    async def read(self, work: Callable[[Tx], T], *, core: bool = False) -> T:
        """Run ``work`` in one read transaction on a database thread."""
        return await self._hop(work, False, core)

    async def _hop(self, work: Callable[[Tx], T], write: bool, core: bool) -> T:
        if self._closed:
            raise StorageError("the store is closed")
        if core:
            return await self._workers.run(partial(self.run_sync, work, write, core))
        return await self._workers.run_driver(work, write)

    def run_sync(self, work: Callable[[Tx], T], write: bool, core: bool = True) -> T:
        """Run ``work`` in one transaction on the calling thread (the executor's, or a script's)."""
        held: _Held | None = None
        try:
            held = self._connection()
            if core:
                return self._core(held, work, write)
            result = self._pg(held, work) if self.pg else self._sqlite(held, work, write)
        except Exception as e:
            error = self._translate(e, held)
            if error is e:
                raise
            raise error from e
        self.commits.count(1)
        return result

    def _translate(self, e: Exception, held: _Held | None) -> Exception:
        """The error a caller sees for ``e``: engine errors as they are, driver errors mapped."""
        integrity, driver_error = self._driver_errors
        if isinstance(e, EngineError):
            return e
        mapped: Exception
        if isinstance(e, (exc.IntegrityError, integrity)):
            mapped = Conflict(f"already stored: {getattr(e, 'orig', None) or e}")
        elif isinstance(e, (exc.SQLAlchemyError, driver_error)):
            if held is not None and not held.usable():
                self._forget(held)
            mapped = StorageError(f"database error: {e}")
        else:
            return e
        mapped.__cause__ = e
        return mapped

    def _group(self, jobs: list[_Job]) -> list[tuple[Any, BaseException | None]]:
        """Run driver-framed calls in one transaction, one savepoint each (group commit; SQLite)."""
        if len(jobs) == 1:
            job = jobs[0]
            try:
                return [(self.run_sync(job.work, job.write, False), None)]
            except Exception as e:
                return [(None, e)]
        held: _Held | None = None
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            held = self._connection()
            raw = held.raw
            raw.execute("BEGIN IMMEDIATE" if any(job.write for job in jobs) else "BEGIN")
            try:
                for job in jobs:
                    raw.execute("SAVEPOINT signoff_call")
                    tx = Tx(held.conn, raw, False, False)
                    try:
                        result = job.work(tx)
                    except Exception as e:
                        _close(tx.cursors)
                        # a failed savepoint rollback, or an error that ended the whole
                        # transaction, fails the group (caught below)
                        raw.execute("ROLLBACK TO signoff_call")
                        raw.execute("RELEASE signoff_call")
                        outcomes.append((None, self._translate(e, held)))
                    else:
                        _close(tx.cursors)
                        raw.execute("RELEASE signoff_call")
                        outcomes.append((result, None))
                raw.commit()
            except BaseException:
                if raw.in_transaction:
                    _rollback_quietly(raw)
                raise
        except Exception as e:
            error = self._translate(e, held)
            # one exception object per caller: each raises it with its own traceback
            failed: list[tuple[Any, BaseException | None]] = [(None, error)]
            return failed + [(None, _again(error)) for _ in jobs[1:]]
        self.commits.count(len(jobs))
        return outcomes

    def _core(self, held: _Held, work: Callable[[Tx], T], write: bool) -> T:
        conn = held.conn
        conn.info[_BEGIN] = "BEGIN IMMEDIATE" if write else "BEGIN"
        with conn.begin():
            return work(Tx(conn, held.raw, self.pg, True))

    def _sqlite(self, held: _Held, work: Callable[[Tx], T], write: bool) -> T:
        raw = held.raw
        raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        tx = Tx(held.conn, raw, False, False)
        try:
            result = work(tx)
            _close(tx.cursors)
            raw.commit()
        except BaseException:
            _close(tx.cursors)
            if raw.in_transaction:
                raw.rollback()
            raise
        return result

    def _pg(self, held: _Held, work: Callable[[Tx], T]) -> T:
        raw = held.raw
        with raw.pipeline():
            try:
                result = work(Tx(held.conn, raw, True, False))
                raw.commit()
            except BaseException:
                _rollback_quietly(raw)
                raise
        return result

    def _connection(self) -> _Held:
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and not held.usable():
            self._forget(held)
            held = None
        now = time.monotonic()
        if held is not None and self.pg and now - held.used > _PING_AFTER_S and not _ping(held.raw):
            self._forget(held)
            held = None
        if held is None:
            held = _Held(self.engine.connect())
            self._local.held = held
            with self._lock:
                self._held.append(held)
        held.used = now
        return held

    def _forget(self, held: _Held) -> None:
        if getattr(self._local, "held", None) is held:
            self._local.held = None
        with self._lock:
            if held in self._held:
                self._held.remove(held)
        with contextlib.suppress(exc.SQLAlchemyError):
            held.conn.invalidate()

    def call(self, work: Callable[[Tx], T], *, write: bool) -> T:
        """Run Core ``work`` in one transaction on a database thread and wait (start-up, scripts)."""
        if self._closed:
            raise StorageError("the store is closed")
        return self._workers.call(partial(self.run_sync, work, write))

    def shutdown(self) -> None:
        """Close the connections and stop the threads, blocking; later calls raise StorageError."""
        if self._closed:
            return
        self._closed = True
        self._workers.shutdown()
        with self._lock:
            held, self._held = self._held, []
        for h in held:
            h.conn.close()
        if self._wal is not None:
            self._wal.stop()
        self.engine.dispose()

    async def close(self) -> None:
        """``shutdown`` off the event loop."""
        await asyncio.to_thread(self.shutdown)


class CommitStats:
    """How many driver-framed calls were committed, in how many transactions (group commit)."""

    __slots__ = ("calls", "largest", "transactions")

    def __init__(self) -> None:
        self.calls = 0
        self.transactions = 0
        self.largest = 0

    def count(self, calls: int) -> None:
        self.calls += calls
        self.transactions += 1
        self.largest = max(self.largest, calls)

    def mean(self) -> float:
        """Calls per transaction since start (1.0 when nothing was grouped)."""
        return self.calls / self.transactions if self.transactions else 1.0


class _Job:
    """A driver-framed call waiting for a database thread, and where its result goes."""

    __slots__ = ("future", "loop", "work", "write")

    def __init__(
        self,
        work: Callable[[Tx], Any],
        write: bool,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.work = work
        self.write = write
        self.loop = loop
        self.future = future


_Done = Callable[[Any, BaseException | None], None]
_Group = Callable[[list[_Job]], list[tuple[Any, BaseException | None]]]


class _Workers:
    """Database threads fed from one queue.

    A result travels back with one ``call_soon_threadsafe`` (``run_in_executor`` chains a
    concurrent future to an asyncio one, about twice the work per call); a group's results
    travel back together, with one.
    """

    def __init__(self, count: int, name: str, group: _Group, most: int) -> None:
        self._jobs: SimpleQueue[tuple[Callable[[], Any], _Done] | _Job | None] = SimpleQueue()
        self._group = group
        self._most = most
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        # what a group's collection took from the queue but could not join it: the next job,
        # or the ``None`` that stops the thread
        held_over: list[tuple[Callable[[], Any], _Done] | _Job | None] = []
        while True:
            job = held_over.pop() if held_over else self._jobs.get()
            if job is None:
                return
            if isinstance(job, _Job):
                group = [job]
                # take the calls already queued behind it, up to the first that cannot join
                while len(group) < self._most:
                    try:
                        nxt = self._jobs.get_nowait()
                    except Empty:
                        break
                    # reads group with reads, writes with writes: a read must not wait for the
                    # write lock (another process writing) that a group with a write takes
                    if not isinstance(nxt, _Job) or nxt.write != job.write:
                        held_over.append(nxt)
                        break
                    group.append(nxt)
                try:
                    outcomes = self._group(group)
                except BaseException as e:  # handed to every caller of the group
                    outcomes = [(None, e)] * len(group)
                self._deliver(group, outcomes)
                continue
            fn, done = job
            try:
                result = fn()
            except BaseException as e:  # handed to the caller, who re-raises it
                done(None, e)
            else:
                done(result, None)

    @staticmethod
    def _deliver(group: list[_Job], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        loop = group[0].loop
        if all(job.loop is loop for job in group):
            loop.call_soon_threadsafe(
                _settle_all, [(job.future, *out) for job, out in zip(group, outcomes, strict=True)]
            )
            return
        for job, (result, error) in zip(group, outcomes, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)

    async def run_driver(self, work: Callable[[Tx], T], write: bool) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(work, write, loop, future))
        return await future

    async def run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def done(result: Any, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, future, result, error)

        self._jobs.put((fn, done))
        return await future

    def call(self, fn: Callable[[], T]) -> T:
        future: Future[T] = Future()

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        self._jobs.put((fn, done))
        return future.result()

    def queued(self) -> int:
        """How many jobs (and stop signals) wait for a thread."""
        return self._jobs.qsize()

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


def _again(error: Exception) -> Exception:
    """Another caller's copy of a group's ``StorageError`` (other errors are passed as they are)."""
    if not isinstance(error, StorageError):
        return error
    copy = StorageError(str(error))
    copy.__cause__ = error.__cause__
    return copy


def _settle_all(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        _settle(future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _close(cursors: list[Any]) -> None:
    for cursor in cursors:
        cursor.close()


def _rollback_quietly(raw: Any) -> None:
    # the error that got us here is the one to report; a failed rollback leaves the
    # connection broken, which the next call notices and replaces
    with contextlib.suppress(Exception):
        raw.rollback()


def _ping(raw: Any) -> bool:
    try:
        raw.execute("SELECT 1")
        raw.rollback()
    except Exception:
        return False
    return True


def _configure_sqlite(engine: sa.Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # the driver must not open transactions behind our back: we emit BEGIN ourselves
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.connection.driver_connection.execute(conn.info.get(_BEGIN, "BEGIN"))  # type: ignore[union-attr]
