"""SQLite WAL checkpoints off the commit path.

By default SQLite checkpoints inside the commit that pushes the WAL past 1,000 pages:
that commit copies the WAL into the database file and fsyncs it, which on our VM's disk
stalled the writer thread — and every ack waiting on it — for 100–300 ms every few
seconds at 5,000 messages/s (py-spy: ``fdatasync`` under ``sqlite3WalCheckpoint`` in
``pysqlite_connection_commit``; the p99 of a chat run). So this process's writer
connections turn automatic checkpoints off and a thread of its own runs a PASSIVE
checkpoint every second on its own connection: it never blocks writers or readers, and
its fsync no longer delays a commit. Durability is unchanged (a committed transaction
is in the WAL either way).
"""

from __future__ import annotations

import sqlite3
import threading

import structlog

from imhub.store.engine import _sqlite_on_connect

log = structlog.get_logger("imhub.store")

CHECKPOINT_SECONDS = 1.0


def no_auto_checkpoint(dbapi_conn: sqlite3.Connection) -> None:
    """For a writer connection of a process that runs a :class:`Checkpointer`."""
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


class Checkpointer:
    def __init__(self, path: str, interval: float = CHECKPOINT_SECONDS) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imhub-sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        # Never gives up: with automatic checkpoints off, this thread is what keeps the
        # WAL from growing without bound.
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.interval):
                conn = conn or self._connect()
                if conn is not None:
                    self.checkpoint(conn)
            if conn is not None:
                self.checkpoint(conn)  # leave a short WAL behind
        finally:
            if conn is not None:
                conn.close()

    def _connect(self) -> sqlite3.Connection | None:
        conn = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            _sqlite_on_connect(conn, None)
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            log.warning("wal checkpoint connection failed; will retry", error=repr(exc))
            return None

    @staticmethod
    def checkpoint(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # e.g. the file went away in a test; try again later
            log.warning("wal checkpoint failed", error=repr(exc))
