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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, delete, func, or_, select, update
from sqlalchemy.engine import Row

from imhub.clock import now_ms
from imhub.domain.model import SILENT_MEDIA, Draft, Media, Message
from imhub.domain.ngrams import Phrase
from imhub.errors import ErrorCode, Refused
from imhub.protocol.frames import mention_ids
from imhub.store.append_ops import (
    AppendOps,
    CoreAppendOps,
    FusedAppend,
    PgAppendOps,
    SqliteAppendOps,
    StoredBefore,
    greatest,
)
from imhub.store.append_ops import Row as MessageRow
from imhub.store.db import Database, PgStatements
from imhub.store.engine import dialect_insert
from imhub.store.search import SEARCHABLE, SearchIndex, searchable_text
from imhub.store.tables import (
    conv_prefs,
    conversations,
    cursors,
    hidden_messages,
    messages,
    pinned_messages,
    reactions,
)

# Where an update goes: (conversation, cmd of its messages).
Where = tuple[str, int]
# An update's change: ``(conn, seq, ts) -> JSON payload`` (None: nothing to store).
Change = Callable[[Connection, int, int], Any]


@dataclass(frozen=True, slots=True)
class ConvPrefs:
    """One user's settings of one conversation."""

    pinned: bool = False
    muted: bool = False
    cleared_seq: int = 0  # "delete for me" of the whole conversation, up to this seq


class _NoUpdate(Exception):
    """An update's change found nothing to change: roll back, store nothing."""


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
        if self._db.dialect == "postgresql" and not any(d.mentions for d in drafts):
            return await self._db.write_pg(self._append_pg, list(drafts))
        return await self._db.write(self._append_core, list(drafts))

    def _append_sqlite(self, cur: sqlite3.Cursor, drafts: list[Draft]) -> list[tuple[Message, bool]]:
        return self._append_batch(SqliteAppendOps(cur), drafts)

    def _append_core(self, conn: Connection, drafts: list[Draft]) -> list[tuple[Message, bool]]:
        return self._append_batch(CoreAppendOps(conn, self._insert, self._search), drafts)

    def _append_pg(self, pg: PgStatements, drafts: list[Draft]) -> list[tuple[Message, bool]]:
        if len({(d.userid, d.cid) for d in drafts if d.cid}) == sum(1 for d in drafts if d.cid):
            try:  # no cid twice in the batch: one statement checks and stores
                return self._append_batch(PgAppendOps(pg), drafts)
            except StoredBefore:
                pass
        return self._append_batch(PgAppendOps(pg, check_in_append=False), drafts)

    def _append_batch(self, ops: AppendOps | FusedAppend, drafts: list[Draft]) -> list[tuple[Message, bool]]:
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
    def _insert_fresh(ops: AppendOps | FusedAppend, drafts: list[Draft]) -> list[Message]:
        if not drafts:
            return []
        if isinstance(ops, FusedAppend):
            return ops.append(drafts, now_ms())
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
        full = any(d.reply_to or d.mentions or d.forwarded for d in drafts)
        for d, conv in zip(drafts, convs, strict=True):
            seq = next_seq[conv]
            next_seq[conv] = seq + 1
            if full:
                rows.append(
                    (conv, seq, ts, d.userid, d.cmd, d.dstid, d.media, d.content, d.pic, d.url, d.memo, d.amount,
                     d.cid, False, d.reply_to, d.mentions, d.forwarded, 0)
                )
            else:  # the common case: the rest keep their defaults (append_ops.PLAIN_ROW)
                rows.append(
                    (conv, seq, ts, d.userid, d.cmd, d.dstid, d.media, d.content, d.pic, d.url, d.memo, d.amount,
                     d.cid, False)
                )
            if d.userid:
                last[(d.userid, conv)] = seq
        stored = [Message(i, *row) for i, row in zip(ops.insert(rows), rows, strict=True)]
        ops.index(
            [(m.id, searchable_text(m)) for m in stored if m.media in SEARCHABLE]
        )
        if last:
            ops.mark_read([(u, c, s) for (u, c), s in sorted(last.items())])
        mentioned = [m for m in stored if m.mentions] if full else []
        if mentioned:
            ops.mention(
                sorted((u, m.conv, m.seq) for m in mentioned if m.mentions != "all" for u in mention_ids(m.mentions)),
                [(m.conv, m.seq) for m in mentioned if m.mentions == "all"],
            )
        return stored

    async def append_update(
        self, where: Where, userid: int, dstid: int, kind: str, amount: int,
        change: Change,
    ) -> Message | None:
        """Apply a change to ``target`` (or its conversation) and store it as an update
        (media 11) in the conversation's stream, in one transaction, so that whoever
        syncs the conversation past it learns of the change. ``change(conn, seq, ts)``
        runs after the update's seq is allocated (on PostgreSQL: with the conversation's
        row locked, so updates of one conversation see each other's state in seq order)
        and returns the update's JSON payload, or None to store nothing (roll back)."""

        conv, cmd = where

        def txn(conn: Connection) -> Message:
            ops = CoreAppendOps(conn, self._insert, self._search)
            seq = ops.bump_seqs({conv: 1})[conv]
            ts = now_ms()
            payload = change(conn, seq, ts)
            if payload is None:
                raise _NoUpdate
            row: MessageRow = (
                conv, seq, ts, userid, cmd, dstid, int(Media.UPDATE), orjson.dumps(payload).decode(),
                "", "", kind, amount, None, False, 0, "", False, 0,
            )
            # No read cursor moves: updates are never unread, and acting on one
            # message is not reading the others.
            [ident] = ops.insert([row])
            return Message(ident, *row)

        try:
            return await self._db.write(txn)
        except _NoUpdate:
            return None

    def edit_change(self, target: Message, text: str) -> Change:
        """The change of an edit: the new text (content and search index), if the
        message is still there to edit."""

        def change(conn: Connection, seq: int, ts: int) -> dict[str, Any] | None:
            done = conn.execute(
                update(messages)
                .where(messages.c.id == target.id, messages.c.recalled.is_(False))
                .values(content=text, edited_at=ts)
            )
            if not done.rowcount:
                return None
            self._search.remove(conn, target.id)
            self._search.add(conn, [(target.id, text)])
            return {"id": target.id, "seq": target.seq, "content": text, "edited_at": ts}

        return change

    def hide_change(self, user_id: int, msgs: list[Message]) -> Change:
        """Delete for me: hide ``msgs`` from ``user_id``'s devices."""

        def change(conn: Connection, seq: int, ts: int) -> dict[str, Any]:
            rows = [{"user_id": user_id, "message_id": m.id, "conv": m.conv, "created": ts} for m in msgs]
            conn.execute(self._insert(hidden_messages).on_conflict_do_nothing(), rows)
            return {"ids": [m.id for m in msgs], "convs": sorted({m.conv for m in msgs})}

        return change

    def clear_change(self, user_id: int, conv: str) -> Change:
        """Delete for me, a whole conversation: hide everything up to its last seq."""

        def change(conn: Connection, seq: int, ts: int) -> dict[str, Any]:
            upto = int(conn.execute(select(conversations.c.last_seq).where(conversations.c.conv == conv)).scalar()
                       or 0)
            stmt = self._insert(conv_prefs).values(user_id=user_id, conv=conv, cleared_seq=upto, updated=ts)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[conv_prefs.c.user_id, conv_prefs.c.conv],
                set_={"cleared_seq": greatest(conv_prefs.c.cleared_seq, stmt.excluded.cleared_seq), "updated": ts},
            ))
            return {"conv": conv, "upto": upto}

        return change

    async def react(self, message_id: int, user_id: int, emoji: str, add: bool, most: int) -> bool:
        """Add (or remove) ``user_id``'s ``emoji`` on a message; a user has at most
        ``most`` different ones per message. True if something changed."""

        def txn(conn: Connection) -> bool:
            mine = reactions.c.message_id == message_id, reactions.c.user_id == user_id
            if not add:
                return bool(conn.execute(delete(reactions).where(*mine, reactions.c.emoji == emoji)).rowcount)
            have = set(conn.execute(select(reactions.c.emoji).where(*mine)).scalars())
            if emoji in have:
                return False
            if len(have) >= most:
                raise Refused(ErrorCode.TOO_MANY_REACTIONS, f"at most {most} different reactions per message")
            row = {"message_id": message_id, "user_id": user_id, "emoji": emoji, "created": now_ms()}
            conn.execute(self._insert(reactions).values(**row).on_conflict_do_nothing())
            return True

        return await self._db.write(txn)

    def reactions_change(self, target: Message) -> Change:
        """The update of a message's reactions: all of them as they are now (read after
        the seq is allocated, so the last update of a message is always current)."""

        def change(conn: Connection, seq: int, ts: int) -> dict[str, Any]:
            return {"id": target.id, "seq": target.seq, "reactions": _summaries(conn, [target.id]).get(target.id, [])}

        return change

    async def reactions_of(self, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """Reactions of these messages: ``id -> [{emoji, count, users}]``."""
        if not ids:
            return {}
        return await self._db.read(_summaries, list(ids))

    def pin_change(self, target: Message, by: int, pinned: bool, most: int) -> Change:
        """Pin (or unpin) a message in its conversation; at most ``most`` pins each."""

        def change(conn: Connection, seq: int, ts: int) -> dict[str, Any] | None:
            here = pinned_messages.c.conv == target.conv
            if pinned:
                pins = list(conn.execute(select(pinned_messages.c.message_id).where(here)).scalars())
                if target.id in pins:
                    return None
                if len(pins) >= most:
                    raise Refused(ErrorCode.TOO_MANY_PINS, f"at most {most} pinned messages per conversation")
                conn.execute(self._insert(pinned_messages).values(
                    conv=target.conv, message_id=target.id, by_id=by, created=ts
                ).on_conflict_do_nothing())
            elif not conn.execute(delete(pinned_messages).where(here, pinned_messages.c.message_id == target.id)
                                  ).rowcount:
                return None
            return {"id": target.id, "seq": target.seq, "pins": _pins(conn, [target.conv]).get(target.conv, [])}

        return change

    async def pins_of(self, convs: Sequence[str]) -> dict[str, list[int]]:
        """The pinned message ids of these conversations, newest pin first."""
        if not convs:
            return {}
        return await self._db.read(_pins, list(convs))

    def prefs_change(self, user_id: int, conv: str, pinned: bool | None, muted: bool | None) -> Change:
        """Pin a conversation to the top of the user's list, or mute it (for them)."""

        def change(conn: Connection, seq: int, ts: int) -> dict[str, Any]:
            values: dict[str, Any] = {"updated": ts}
            if pinned is not None:
                values["pinned"] = pinned
            if muted is not None:
                values["muted"] = muted
            stmt = self._insert(conv_prefs).values(user_id=user_id, conv=conv, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=[conv_prefs.c.user_id, conv_prefs.c.conv],
                                                    set_=values))
            r = conn.execute(select(conv_prefs.c.pinned, conv_prefs.c.muted).where(
                conv_prefs.c.user_id == user_id, conv_prefs.c.conv == conv)).one()
            return {"conv": conv, "pinned": bool(r.pinned), "muted": bool(r.muted)}

        return change

    async def hidden_among(self, user_id: int, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` the user hid (deleted for themselves)."""
        if not ids:
            return set()
        stmt = select(hidden_messages.c.message_id).where(
            hidden_messages.c.user_id == user_id, hidden_messages.c.message_id.in_(list(ids))
        )

        def txn(conn: Connection) -> set[int]:
            return {int(r[0]) for r in conn.execute(stmt)}

        return await self._db.read(txn)

    async def prefs_of(self, user_id: int) -> dict[str, ConvPrefs]:
        """The user's settings of each conversation they changed one of."""
        stmt = select(conv_prefs).where(conv_prefs.c.user_id == user_id)

        def txn(conn: Connection) -> dict[str, ConvPrefs]:
            return {
                r.conv: ConvPrefs(bool(r.pinned), bool(r.muted), int(r.cleared_seq)) for r in conn.execute(stmt)
            }

        return await self._db.read(txn)

    async def mentions_of(self, user_id: int, convs: Sequence[str]) -> dict[str, int]:
        """The last seq of each conversation that mentions ``user_id`` (by id or @all)."""
        if not convs:
            return {}

        def txn(conn: Connection) -> dict[str, int]:
            out: dict[str, int] = {}
            rows = conn.execute(select(cursors.c.conv, cursors.c.mention_seq).where(
                cursors.c.user_id == user_id, cursors.c.mention_seq > 0))
            for conv, seq in rows:
                out[str(conv)] = int(seq)
            rows = conn.execute(select(conversations.c.conv, conversations.c.mention_all_seq).where(
                conversations.c.conv.in_(list(convs)), conversations.c.mention_all_seq > 0))
            for conv, seq in rows:
                out[str(conv)] = max(out.get(str(conv), 0), int(seq))
            return out

        return await self._db.read(txn)

    async def silent_after(self, marks: dict[str, int]) -> dict[str, int]:
        """How many updates (media 11, not unread) each conversation has after the seq
        given for it."""
        if not marks:
            return {}
        stmt = (
            select(messages.c.conv, func.count())
            .where(
                messages.c.media.in_(sorted(SILENT_MEDIA)),
                or_(*(and_(messages.c.conv == c, messages.c.seq > s) for c, s in marks.items())),
            )
            .group_by(messages.c.conv)
        )

        def txn(conn: Connection) -> dict[str, int]:
            return {str(r[0]): int(r[1]) for r in conn.execute(stmt)}

        return await self._db.read(txn)

    async def last_spoken(self, conv: str, before_seq: int) -> Message | None:
        """The newest message of ``conv`` below ``before_seq`` that is not an update."""
        stmt = (
            select(messages)
            .where(messages.c.conv == conv, messages.c.seq < before_seq, messages.c.media.not_in(sorted(SILENT_MEDIA)))
            .order_by(messages.c.seq.desc())
            .limit(1)
        )
        found = await self._db.read(_messages_of, stmt)
        return found[0] if found else None

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
            if r is not None:  # its edits' texts go too
                conn.execute(
                    update(messages)
                    .where(messages.c.conv == r.conv, messages.c.seq > r.seq, messages.c.media == Media.UPDATE,
                           messages.c.amount == message_id, messages.c.memo == "edited")
                    .values(content=orjson.dumps({"id": message_id, "seq": r.seq, "recalled": True}).decode())
                )
            return _message(r) if r else None

        return await self._db.write(txn)

    # --- reading -------------------------------------------------------------------

    async def after(self, conv: str, seq: int, limit: int) -> list[Message]:
        """Messages of ``conv`` with seq > ``seq``, ascending, at most ``limit``."""
        stmt = (
            select(messages).where(messages.c.conv == conv, messages.c.seq > seq).order_by(messages.c.seq).limit(limit)
        )
        return await self._db.read(_messages_of, stmt)

    async def settled_seqs(self, wanted: Sequence[tuple[str, int]]) -> dict[str, int]:
        """For each ``(conv, before_ts)``: the highest seq of ``conv`` stored before
        ``before_ts`` (ms), 0 if none: what a process starting to receive ``conv`` takes
        as already delivered. One statement (one round trip) for all, one index lookup
        per conversation."""
        if not wanted:
            return {}
        cols = [
            select(messages.c.seq).where(messages.c.conv == conv, messages.c.ts < before_ts)
            .order_by(messages.c.seq.desc()).limit(1).scalar_subquery().label(f"s{i}")
            for i, (conv, before_ts) in enumerate(wanted)
        ]
        row = await self._db.read(_first_row, select(*cols))
        return {conv: int(v) if v is not None else 0 for (conv, _), v in zip(wanted, row, strict=True)}

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
        # PostgreSQL: statements on the append's own connection, so it never waits for
        # an append holding these rows (they take turns), nor an append for it; it used
        # to hold them all for a whole SQLAlchemy transaction. In chunks, so an append
        # waits for one chunk at most, not for every active user's cursor.
        for at in range(0, len(marks), FLUSH_CHUNK):
            await self._db.write_pg(_advance_delivered_pg, marks[at : at + FLUSH_CHUNK])

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


# Delivered marks per statement on PostgreSQL (~2-4 ms each on a busy 2-core box).
FLUSH_CHUNK = 256

_ADVANCE_DELIVERED_PG = """
INSERT INTO cursors AS k (user_id, conv, delivered_seq, read_seq)
SELECT u, c, max(s), 0 FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS t(u, c, s)
GROUP BY u, c ORDER BY u, c
ON CONFLICT (user_id, conv) DO UPDATE SET delivered_seq = greatest(k.delivered_seq, excluded.delivered_seq)
"""


def _advance_delivered_pg(pg: PgStatements, marks: list[tuple[int, str, int]]) -> None:
    pg.fetch(_ADVANCE_DELIVERED_PG, [u for u, _, _ in marks], [c for _, c, _ in marks], [s for _, _, s in marks])


def _pins(conn: Connection, convs: list[str]) -> dict[str, list[int]]:
    rows = conn.execute(
        select(pinned_messages.c.conv, pinned_messages.c.message_id)
        .where(pinned_messages.c.conv.in_(convs))
        .order_by(pinned_messages.c.created.desc(), pinned_messages.c.message_id.desc())
    )
    out: dict[str, list[int]] = {}
    for conv, message_id in rows:
        out.setdefault(str(conv), []).append(int(message_id))
    return out


# "Who reacted" lists at most this many users per emoji (count has them all).
REACTION_USERS_SHOWN = 20


def _summaries(conn: Connection, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """``id -> [{"emoji", "count", "users"}]``, emoji in the order first used."""
    rows = conn.execute(
        select(reactions.c.message_id, reactions.c.emoji, reactions.c.user_id)
        .where(reactions.c.message_id.in_(ids))
        .order_by(reactions.c.message_id, reactions.c.created, reactions.c.user_id)
    )
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for message_id, emoji, user_id in rows:
        entry = out.setdefault(int(message_id), {}).setdefault(emoji, {"emoji": emoji, "count": 0, "users": []})
        entry["count"] += 1
        if len(entry["users"]) < REACTION_USERS_SHOWN:
            entry["users"].append(int(user_id))
    return {i: list(by_emoji.values()) for i, by_emoji in out.items()}


def _messages_of(conn: Connection, stmt: Select[Any]) -> list[Message]:
    return [_message(r) for r in conn.execute(stmt)]


def _first_row(conn: Connection, stmt: Select[Any]) -> tuple[Any, ...]:
    return tuple(conn.execute(stmt).one())
