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
from queue import SimpleQueue
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
        self._workers = _Workers(workers, f"signoff-{backend}")
        self._closed = False

    async def write(self, work: Callable[[Tx], T], *, core: bool = False) -> T:
        """Run ``work`` in one write transaction on a database thread."""
        return await self._hop(work, True, core)

    async def read(self, work: Callable[[Tx], T], *, core: bool = False) -> T:
        """Run ``work`` in one read transaction on a database thread."""
        return await self._hop(work, False, core)

    async def _hop(self, work: Callable[[Tx], T], write: bool, core: bool) -> T:
        if self._closed:
            raise StorageError("the store is closed")
        return await self._workers.run(partial(self.run_sync, work, write, core))

    def run_sync(self, work: Callable[[Tx], T], write: bool, core: bool = True) -> T:
        """Run ``work`` in one transaction on the calling thread (the executor's, or a script's)."""
        integrity, driver_error = self._driver_errors
        held: _Held | None = None
        try:
            held = self._connection()
            if core:
                return self._core(held, work, write)
            if self.pg:
                return self._pg(held, work)
            return self._sqlite(held, work, write)
        except EngineError:
            raise
        except (exc.IntegrityError, integrity) as e:
            raise Conflict(f"already stored: {getattr(e, 'orig', None) or e}") from e
        except (exc.SQLAlchemyError, driver_error) as e:
            if held is not None and not held.usable():
                self._forget(held)
            raise StorageError(f"database error: {e}") from e

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


_Done = Callable[[Any, BaseException | None], None]


class _Workers:
    """Database threads fed from one queue.

    A result travels back with one ``call_soon_threadsafe`` (``run_in_executor`` chains a
    concurrent future to an asyncio one, about twice the work per call).
    """

    def __init__(self, count: int, name: str) -> None:
        self._jobs: SimpleQueue[tuple[Callable[[], Any], _Done] | None] = SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, done = job
            try:
                result = fn()
            except BaseException as e:  # handed to the caller, who re-raises it
                done(None, e)
            else:
                done(result, None)

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

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


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
