"""Messages, per-conversation sequence numbers and per-member cursors.

Guarantees:
- ``append_batch`` is atomic: every draft of the batch is stored, or none is.
- ``seq`` is gapless per conversation: allocation is ``UPDATE conversations SET
  last_seq = last_seq + n RETURNING last_seq`` inside the same transaction as the
  inserts, which serialises writers per conversation on PostgreSQL (row lock, taken
  in sorted order so concurrent batches cannot deadlock) and globally on SQLite.
- ``(userid, cid)`` is unique: a draft whose cid was already stored returns the stored
  message flagged as a duplicate instead of a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, or_, select, update
from sqlalchemy.engine import Row

from imhub.clock import now_ms
from imhub.domain.model import Draft, Message
from imhub.domain.ngrams import Phrase
from imhub.store.append_ops import AppendOps, CoreAppendOps, SqliteAppendOps, greatest
from imhub.store.append_ops import Row as MessageRow
from imhub.store.db import Database
from imhub.store.engine import dialect_insert
from imhub.store.search import SEARCHABLE, SearchIndex, searchable_text
from imhub.store.tables import conversations, cursors, messages


def _message(r: Row[Any]) -> Message:
    return Message(**dict(r._mapping))


class MessageStore:
    """Every method is one transaction: a sync function run by :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = dialect_insert(db.async_engine)
        self._search = SearchIndex(db.async_engine)

    # --- writing -------------------------------------------------------------------

    async def append_batch(self, drafts: Sequence[Draft]) -> list[tuple[Message, bool]]:
        """Store ``drafts`` in one transaction; returns ``(message, duplicate)`` per draft,
        in order. Drafts repeating a stored (or earlier-in-batch) cid are duplicates."""
        if self._db.is_sqlite:
            return await self._db.write_raw(self._append_sqlite, list(drafts))
        return await self._db.write(self._append_core, list(drafts))

    def _append_sqlite(self, cur: sqlite3.Cursor, drafts: list[Draft]) -> list[tuple[Message, bool]]:
        return self._append_batch(SqliteAppendOps(cur), drafts)

    def _append_core(self, conn: Connection, drafts: list[Draft]) -> list[tuple[Message, bool]]:
        return self._append_batch(CoreAppendOps(conn, self._insert, self._search), drafts)

    def _append_batch(self, ops: AppendOps, drafts: list[Draft]) -> list[tuple[Message, bool]]:
        keys = {(d.userid, d.cid) for d in drafts if d.cid}
        existing = ops.existing(keys) if keys else {}
        if not existing and len(keys) == len(drafts):
            # The common case: every draft has its own new cid.
            return [(m, False) for m in self._insert_fresh(ops, drafts)]
        fresh: list[Draft] = []
        fresh_at: set[int] = set()  # positions in ``drafts`` (one Draft may be listed twice)
        first_of_cid: set[tuple[int, str]] = set()
        for at, d in enumerate(drafts):
            key = (d.userid, d.cid) if d.cid else None
            if key and (key in existing or key in first_of_cid):
                continue
            if key:
                first_of_cid.add(key)
            fresh.append(d)
            fresh_at.add(at)
        stored = self._insert_fresh(ops, fresh)
        by_cid = {**existing, **{(m.userid, m.cid): m for m in stored if m.cid}}
        results: list[tuple[Message, bool]] = []
        fresh_iter = iter(stored)
        for at, d in enumerate(drafts):
            if at in fresh_at:
                results.append((next(fresh_iter), False))
            else:
                assert d.cid is not None
                results.append((by_cid[(d.userid, d.cid)], True))
        return results

    @staticmethod
    def _insert_fresh(ops: AppendOps, drafts: list[Draft]) -> list[Message]:
        if not drafts:
            return []
        convs = [d.conv for d in drafts]
        per_conv: dict[str, int] = {}
        for conv in convs:
            per_conv[conv] = per_conv.get(conv, 0) + 1
        last_seq = ops.bump_seqs(per_conv)
        next_seq = {conv: last_seq[conv] - n + 1 for conv, n in per_conv.items()}
        ts = now_ms()
        rows: list[MessageRow] = []
        # A sender has read their own message: it never counts as unread on their
        # other devices. (userid 0: made by the server, no cursor.) Seqs only grow
        # within a conversation, so the last one seen is the highest.
        last: dict[tuple[int, str], int] = {}
        for d, conv in zip(drafts, convs, strict=True):
            seq = next_seq[conv]
            next_seq[conv] = seq + 1
            rows.append(
                (conv, seq, ts, d.userid, d.cmd, d.dstid, d.media, d.content, d.pic, d.url, d.memo, d.amount, d.cid,
                 False)
            )
            if d.userid:
                last[(d.userid, conv)] = seq
        stored = [Message(i, *row) for i, row in zip(ops.insert(rows), rows, strict=True)]
        ops.index(
            [(m.id, searchable_text(m)) for m in stored if m.media in SEARCHABLE]
        )
        if last:
            ops.mark_read([(u, c, s) for (u, c), s in sorted(last.items())])
        return stored

    async def recall(self, message_id: int) -> Message | None:
        """Mark recalled and erase the content (storage and search index)."""

        def txn(conn: Connection) -> Message | None:
            conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(recalled=True, content="", pic="", url="", memo="", amount=0)
            )
            self._search.remove(conn, message_id)
            r = conn.execute(select(messages).where(messages.c.id == message_id)).first()
            return _message(r) if r else None

        return await self._db.write(txn)

    # --- reading -------------------------------------------------------------------

    async def after(self, conv: str, seq: int, limit: int) -> list[Message]:
        """Messages of ``conv`` with seq > ``seq``, ascending, at most ``limit``."""
        stmt = (
            select(messages).where(messages.c.conv == conv, messages.c.seq > seq).order_by(messages.c.seq).limit(limit)
        )
        return await self._db.read(_messages_of, stmt)

    async def settled_seq(self, conv: str, before_ts: int) -> int:
        """The highest seq of ``conv`` stored before ``before_ts`` (ms), 0 if none: what
        a process starting to receive ``conv`` takes as already delivered."""
        stmt = (
            select(messages.c.seq).where(messages.c.conv == conv, messages.c.ts < before_ts)
            .order_by(messages.c.seq.desc()).limit(1)
        )
        return int(await self._db.read(_scalar_or_zero, stmt))

    async def before(self, conv: str, seq: int, limit: int) -> list[Message]:
        """History: up to ``limit`` messages of ``conv`` with seq < ``seq``, ascending."""
        stmt = (
            select(messages)
            .where(messages.c.conv == conv, messages.c.seq < seq)
            .order_by(messages.c.seq.desc())
            .limit(limit)
        )
        return list(reversed(await self._db.read(_messages_of, stmt)))

    async def get(self, message_id: int) -> Message | None:
        found = await self._db.read(_messages_of, select(messages).where(messages.c.id == message_id))
        return found[0] if found else None

    async def get_many(self, ids: Sequence[int]) -> list[Message]:
        """Messages by id, in the order of ``ids``."""
        if not ids:
            return []
        found = await self._db.read(_messages_of, select(messages).where(messages.c.id.in_(list(ids))))
        by_id = {m.id: m for m in found}
        return [by_id[i] for i in ids if i in by_id]

    async def search(self, convs: list[str], phrases: Sequence[Phrase], before_id: int, limit: int) -> list[Message]:
        def txn(conn: Connection) -> list[Message]:
            ids = self._search.search(conn, convs, phrases, before_id, limit)
            if not ids:
                return []
            by_id = {m.id: m for m in _messages_of(conn, select(messages).where(messages.c.id.in_(ids)))}
            return [by_id[i] for i in ids if i in by_id]

        return await self._db.read(txn)

    async def last_seqs(self, convs: Iterable[str]) -> dict[str, int]:
        convs = list(convs)
        if not convs:
            return {}

        def txn(conn: Connection) -> dict[str, int]:
            rows = conn.execute(select(conversations).where(conversations.c.conv.in_(convs)))
            return {r.conv: int(r.last_seq) for r in rows}

        return await self._db.read(txn)

    async def by_conv_seq(self, pairs: Iterable[tuple[str, int]]) -> list[Message]:
        pairs = list(pairs)
        if not pairs:
            return []
        stmt = select(messages).where(or_(*(and_(messages.c.conv == c, messages.c.seq == s) for c, s in pairs)))
        return await self._db.read(_messages_of, stmt)

    # --- cursors -------------------------------------------------------------------

    async def cursors_of(self, user_id: int) -> dict[str, tuple[int, int]]:
        """``conv -> (delivered_seq, read_seq)`` for every cursor the user has."""

        def txn(conn: Connection) -> dict[str, tuple[int, int]]:
            rows = conn.execute(select(cursors).where(cursors.c.user_id == user_id))
            return {r.conv: (int(r.delivered_seq), int(r.read_seq)) for r in rows}

        return await self._db.read(txn)

    async def advance_delivered(self, marks: Iterable[tuple[int, str, int]]) -> None:
        """Raise delivered cursors to at least the given seqs (never lowers one)."""
        # Sorted by (user, conversation), the order the message append upserts its
        # cursors in: in delivery order the two deadlocked on PostgreSQL under load
        # (the same rows in 1:1 chats), and an aborted append failed its whole batch.
        marks = sorted(marks)
        if self._db.is_sqlite:
            # Plain SQL on the writer thread: this runs every second under load with
            # a row per active (user, conversation), and appends wait behind it.
            params = marks
            if params:
                await self._db.write_raw(_advance_delivered_sqlite, params)
            return
        rows = [{"user_id": u, "conv": c, "delivered_seq": s, "read_seq": 0} for u, c, s in marks]
        if not rows:
            return
        stmt = self._insert(cursors)
        stmt = stmt.on_conflict_do_update(
            index_elements=[cursors.c.user_id, cursors.c.conv],
            set_={"delivered_seq": greatest(cursors.c.delivered_seq, stmt.excluded.delivered_seq)},
        )
        await self._db.write(lambda conn: conn.execute(stmt, rows))

    async def advance_read(self, user_id: int, conv: str, seq: int) -> tuple[int, int]:
        """Raise the read cursor (and delivered with it) to ``seq``; never lowers.
        Returns the resulting ``(delivered_seq, read_seq)``."""
        stmt = self._insert(cursors).values(user_id=user_id, conv=conv, delivered_seq=seq, read_seq=seq)
        stmt = stmt.on_conflict_do_update(
            index_elements=[cursors.c.user_id, cursors.c.conv],
            set_={
                "read_seq": greatest(cursors.c.read_seq, stmt.excluded.read_seq),
                "delivered_seq": greatest(cursors.c.delivered_seq, stmt.excluded.delivered_seq),
            },
        )

        def txn(conn: Connection) -> tuple[int, int]:
            conn.execute(stmt)
            r = conn.execute(
                select(cursors.c.delivered_seq, cursors.c.read_seq).where(
                    cursors.c.user_id == user_id, cursors.c.conv == conv
                )
            ).one()
            return int(r.delivered_seq), int(r.read_seq)

        return await self._db.write(txn)

    async def cursors_in(self, conv: str) -> dict[int, tuple[int, int]]:
        """``user -> (delivered_seq, read_seq)`` of everyone with a cursor in ``conv``."""

        def txn(conn: Connection) -> dict[int, tuple[int, int]]:
            rows = conn.execute(select(cursors).where(cursors.c.conv == conv))
            return {int(r.user_id): (int(r.delivered_seq), int(r.read_seq)) for r in rows}

        return await self._db.read(txn)

    async def start_cursor(self, user_id: int, conv: str) -> None:
        """Place a new member's cursors at the conversation's current end, so joining a
        group does not replay its history as 'missed'."""

        def txn(conn: Connection) -> None:
            last = conn.execute(select(conversations.c.last_seq).where(conversations.c.conv == conv)).scalar() or 0
            stmt = self._insert(cursors).values(user_id=user_id, conv=conv, delivered_seq=last, read_seq=last)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[cursors.c.user_id, cursors.c.conv],
                    set_={"delivered_seq": last, "read_seq": last},
                )
            )

        await self._db.write(txn)


_ADVANCE_DELIVERED_SQLITE = (
    "INSERT INTO cursors (user_id, conv, delivered_seq, read_seq) VALUES (?, ?, ?, 0) "
    "ON CONFLICT (user_id, conv) DO UPDATE SET delivered_seq = max(delivered_seq, excluded.delivered_seq)"
)


def _advance_delivered_sqlite(cur: sqlite3.Cursor, marks: list[tuple[int, str, int]]) -> None:
    cur.executemany(_ADVANCE_DELIVERED_SQLITE, marks)


def _messages_of(conn: Connection, stmt: Select[Any]) -> list[Message]:
    return [_message(r) for r in conn.execute(stmt)]


def _scalar_or_zero(conn: Connection, stmt: Select[Any]) -> int:
    value = conn.execute(stmt).scalar()
    return int(value) if value is not None else 0
