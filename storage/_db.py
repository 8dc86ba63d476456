"""Engines, threads and transactions: one executor hop and one transaction per store call.

SQLite: one dedicated thread owns one connection (WAL, synchronous=NORMAL, busy_timeout);
writes start with ``BEGIN IMMEDIATE`` so that a read-modify-write of a row is serialised
against other processes too, reads with a deferred ``BEGIN``.

PostgreSQL: a small pool, one thread per pooled connection; write transactions lock the rows
they read-modify-write with ``SELECT ... FOR UPDATE`` (see ``Tx.lock``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url

from engine.errors import Conflict, EngineError
from storage.mapping import dumps_json

__all__ = ["Database", "StorageError", "Tx"]

T = TypeVar("T")

_BEGIN = "signoff_begin"


class StorageError(EngineError):
    """The database failed in a way the caller cannot fix (unreachable, locked too long, ...)."""


class Tx:
    """One open transaction, handed to the synchronous functions that do a store call's work."""

    __slots__ = ("conn", "pg")

    def __init__(self, conn: sa.Connection, pg: bool) -> None:
        self.conn = conn
        self.pg = pg

    def execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        """Execute a Core statement with optional parameters (a dict, or a list: executemany)."""
        return self.conn.execute(statement, params)

    def lock(self, statement: sa.Select[Any]) -> sa.Select[Any]:
        """``statement`` with ``FOR UPDATE`` on PostgreSQL (SQLite's ``BEGIN IMMEDIATE`` already
        holds the database's write lock)."""
        return statement.with_for_update() if self.pg else statement


class Database:
    """An engine plus the threads that run its transactions off the event loop."""

    def __init__(self, url: str | URL, *, pool_size: int = 4, busy_timeout_ms: int = 5000) -> None:
        self.url = make_url(url)
        backend = self.url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise StorageError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")
        self.pg = backend == "postgresql"
        self._local = threading.local()
        if self.pg:
            self.engine = sa.create_engine(
                self.url, json_serializer=dumps_json, pool_size=pool_size, max_overflow=0, pool_pre_ping=True
            )
            workers = pool_size
        else:
            self.engine = sa.create_engine(
                self.url, json_serializer=dumps_json, connect_args={"check_same_thread": False}
            )
            _configure_sqlite(self.engine, busy_timeout_ms)
            workers = 1
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"signoff-{backend}")
        self._closed = False

    async def write(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one write transaction on a database thread."""
        return await self._hop(work, True)

    async def read(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one read transaction on a database thread."""
        return await self._hop(work, False)

    async def _hop(self, work: Callable[[Tx], T], write: bool) -> T:
        if self._closed:
            raise StorageError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run_sync, work, write)

    def run_sync(self, work: Callable[[Tx], T], write: bool) -> T:
        """Run ``work`` in one transaction on the calling thread (the executor's, or a script's)."""
        try:
            if self.pg:
                with self.engine.begin() as conn:
                    return work(Tx(conn, True))
            conn = self._sqlite_connection()
            conn.info[_BEGIN] = "BEGIN IMMEDIATE" if write else "BEGIN"
            with conn.begin():
                return work(Tx(conn, False))
        except EngineError:
            raise
        except exc.IntegrityError as e:
            raise Conflict(f"already stored: {e.orig}") from e
        except exc.SQLAlchemyError as e:
            raise StorageError(f"database error: {e}") from e

    def _sqlite_connection(self) -> sa.Connection:
        conn: sa.Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            self._local.conn = conn
        return conn

    def _close_thread_connection(self) -> None:
        conn: sa.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def call(self, work: Callable[[Tx], T], *, write: bool) -> T:
        """Run ``work`` in one transaction on a database thread and wait (for start-up and scripts)."""
        if self._closed:
            raise StorageError("the store is closed")
        return self._executor.submit(self.run_sync, work, write).result()

    def shutdown(self) -> None:
        """Close the connections and stop the threads, blocking; later calls raise StorageError."""
        if self._closed:
            return
        self._closed = True
        if not self.pg:
            self._executor.submit(self._close_thread_connection).result()
        self._executor.shutdown(wait=True)
        self.engine.dispose()

    async def close(self) -> None:
        """``shutdown`` off the event loop."""
        await asyncio.to_thread(self.shutdown)


def _configure_sqlite(engine: sa.Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # the driver must not open transactions behind our back: we emit BEGIN ourselves
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(conn.info.get(_BEGIN, "BEGIN"))
