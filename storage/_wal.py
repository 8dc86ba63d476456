"""SQLite WAL checkpoints on a thread of their own, off the commit path.

With the default ``wal_autocheckpoint`` the commit that crosses 1,000 WAL pages copies them
into the database file and fsyncs it: one commit in ~100 pays milliseconds, which here was
more than the other 99 cost together. A PASSIVE checkpoint runs alongside readers and writers,
so this thread takes that work; the writers' own threshold stays as a backstop should it fall
behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["WRITER_AUTOCHECKPOINT_PAGES", "WalCheckpointer"]

log = logging.getLogger("signoff.storage")

# the writers' backstop: checkpoint themselves only when the WAL is this large (80 MB)
WRITER_AUTOCHECKPOINT_PAGES = 20_000


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s`` until stopped."""

    def __init__(self, path: str, *, interval_s: float = 0.1) -> None:
        self._path = path
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="signoff-sqlite-wal", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:  # the store's own connection reports it to the caller
            log.debug("wal checkpoints off: %s", e)
            return
        try:
            while not self._stop.wait(self._interval_s):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:
                    # a busy or missing file is retried next time; writers' backstop still holds
                    log.debug("wal checkpoint skipped: %s", e)
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        self._thread.join()
