"""The statements of the message-append transaction (the hottest write), per dialect.

:class:`MessageStore` decides *what* happens in an append (dedupe by cid, allocate seqs,
insert, index, move senders' cursors); these classes only say *how* for one backend.
``CoreAppendOps`` uses SQLAlchemy Core and serves PostgreSQL. ``SqliteAppendOps`` runs
the same statements as plain SQL on a ``sqlite3`` cursor of the writer thread's own
connection (:meth:`imhub.store.db.Database.write_raw`): for a one-message batch
SQLAlchemy's statement compilation, result handling and transaction machinery cost
several times what SQLite itself spends, and this is the path every chat message takes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import Connection, case, insert, select, tuple_, update

from imhub.domain.model import Message
from imhub.domain.ngrams import index_terms
from imhub.store.search import SearchIndex
from imhub.store.tables import conversations, cursors, messages

Key = tuple[int, str]
# A message row without its id, in this order (also the order of Message's fields
# after ``id``, so ``Message(id, *row)`` builds the stored message).
ROW_FIELDS = ("conv", "seq", "ts", "userid", "cmd", "dstid", "media", "content", "pic", "url", "memo", "amount",
              "cid", "recalled")
Row = tuple[Any, ...]
_COLUMNS = [c.name for c in messages.c]


class AppendOps(Protocol):
    def existing(self, keys: set[Key]) -> dict[Key, Message]:
        """Stored messages for these (sender, cid) pairs."""

    def bump_seq(self, conv: str, n: int) -> int:
        """Add ``n`` to the conversation's last seq (creating it); returns the new last."""

    def insert(self, rows: list[Row]) -> list[int]:
        """Insert message rows (``ROW_FIELDS`` order); returns their ids in order."""

    def index(self, docs: list[tuple[int, str]]) -> None:
        """Add (message id, text) to the search index."""

    def mark_read(self, marks: Iterable[tuple[int, str, int]]) -> None:
        """Raise (user, conv) read and delivered cursors to at least seq."""


def greatest(a: Any, b: Any) -> Any:
    """GREATEST(a, b) that SQLite and PostgreSQL both understand."""
    return case((b > a, b), else_=a)


class CoreAppendOps:
    def __init__(self, conn: Connection, dialect_insert: Any, search: SearchIndex) -> None:
        self._conn = conn
        self._insert = dialect_insert
        self._search = search

    def existing(self, keys: set[Key]) -> dict[Key, Message]:
        rows = self._conn.execute(select(messages).where(tuple_(messages.c.userid, messages.c.cid).in_(list(keys))))
        return {(r.userid, r.cid): Message(**dict(r._mapping)) for r in rows}

    def bump_seq(self, conv: str, n: int) -> int:
        last = self._conn.execute(
            update(conversations)
            .where(conversations.c.conv == conv)
            .values(last_seq=conversations.c.last_seq + n)
            .returning(conversations.c.last_seq)
        ).scalar()
        if last is not None:
            return int(last)
        # First message of the conversation. ON CONFLICT covers a concurrent first
        # writer on another node: then the UPDATE path runs again under its lock.
        self._conn.execute(self._insert(conversations).values(conv=conv, last_seq=0).on_conflict_do_nothing())
        return self.bump_seq(conv, n)

    def insert(self, rows: list[Row]) -> list[int]:
        params = [dict(zip(ROW_FIELDS, r, strict=True)) for r in rows]
        result = self._conn.execute(insert(messages).returning(messages.c.id, sort_by_parameter_order=True), params)
        return [int(r.id) for r in result]

    def index(self, docs: list[tuple[int, str]]) -> None:
        self._search.add(self._conn, docs)

    def mark_read(self, marks: Iterable[tuple[int, str, int]]) -> None:
        stmt = self._insert(cursors)
        stmt = stmt.on_conflict_do_update(
            index_elements=[cursors.c.user_id, cursors.c.conv],
            set_={
                "read_seq": greatest(cursors.c.read_seq, stmt.excluded.read_seq),
                "delivered_seq": greatest(cursors.c.delivered_seq, stmt.excluded.delivered_seq),
            },
        )
        self._conn.execute(stmt, [{"user_id": u, "conv": c, "delivered_seq": s, "read_seq": s} for u, c, s in marks])


class SqliteAppendOps:
    _SELECT = f"SELECT {', '.join(_COLUMNS)} FROM messages WHERE userid = ? AND cid = ?"  # noqa: S608 - fixed
    _BUMP = "UPDATE conversations SET last_seq = last_seq + ? WHERE conv = ? RETURNING last_seq"
    _NEW_CONV = "INSERT INTO conversations (conv, last_seq) VALUES (?, ?)"
    _MAX_ID = "SELECT max(id) FROM messages"
    _INSERT = (
        f"INSERT INTO messages (id, {', '.join(ROW_FIELDS)}) "  # noqa: S608 - fixed
        f"VALUES ({', '.join('?' * (len(ROW_FIELDS) + 1))})"
    )
    _INDEX = "INSERT INTO message_fts (rowid, terms) VALUES (?, ?)"
    _READ = (
        "INSERT INTO cursors (user_id, conv, delivered_seq, read_seq) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id, conv) DO UPDATE SET read_seq = max(read_seq, excluded.read_seq), "
        "delivered_seq = max(delivered_seq, excluded.delivered_seq)"
    )

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur

    def existing(self, keys: set[Key]) -> dict[Key, Message]:
        found: dict[Key, Message] = {}
        for key in keys:
            row = self._cur.execute(self._SELECT, key).fetchone()
            if row is not None:
                values = dict(zip(_COLUMNS, row, strict=True))
                values["recalled"] = bool(values["recalled"])  # sqlite3 gives 0/1
                found[key] = Message(**values)
        return found

    def bump_seq(self, conv: str, n: int) -> int:
        row = self._cur.execute(self._BUMP, (n, conv)).fetchone()
        if row is not None:
            return int(row[0])
        # The writer thread holds SQLite's write lock (BEGIN IMMEDIATE): no one else
        # can create the conversation between the UPDATE and this INSERT.
        self._cur.execute(self._NEW_CONV, (conv, n))
        return n

    def insert(self, rows: list[Row]) -> list[int]:
        # Ids are given, not left to SQLite: the transaction holds the write lock
        # (BEGIN IMMEDIATE), so max(id) + 1, + 2, ... are free and are what SQLite
        # would pick itself; this lets one executemany insert the whole batch.
        first = (self._cur.execute(self._MAX_ID).fetchone()[0] or 0) + 1
        ids = list(range(first, first + len(rows)))
        self._cur.executemany(self._INSERT, [(i, *r) for i, r in zip(ids, rows, strict=True)])
        return ids

    def index(self, docs: list[tuple[int, str]]) -> None:
        rows = [(i, terms) for i, text in docs if (terms := index_terms(text))]
        if rows:
            self._cur.executemany(self._INDEX, rows)

    def mark_read(self, marks: Iterable[tuple[int, str, int]]) -> None:
        self._cur.executemany(self._READ, [(u, c, s, s) for u, c, s in marks])

