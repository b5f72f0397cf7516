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

import functools
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import orjson
from sqlalchemy import Connection, case, insert, select, tuple_, update

from imhub.domain.model import Draft, Message
from imhub.domain.ngrams import index_terms
from imhub.store.db import PgStatements
from imhub.store.search import SEARCHABLE, SearchIndex, searchable_text
from imhub.store.tables import conversations, cursors, messages

Key = tuple[int, str]
# A message row without its id, in this order (also the order of Message's fields
# after ``id``, so ``Message(id, *row)`` builds the stored message).
# A row of a plain message stops after ``recalled`` (the columns after it keep their
# defaults): a batch binds ~20 % fewer values. A batch with a reply, mention or forward
# in it has every row in full.
ROW_FIELDS = ("conv", "seq", "ts", "userid", "cmd", "dstid", "media", "content", "pic", "url", "memo", "amount",
              "cid", "recalled", "reply_to", "mentions", "forwarded", "edited_at")
PLAIN_ROW = ROW_FIELDS.index("recalled") + 1
Row = tuple[Any, ...]
_COLUMNS = [c.name for c in messages.c]
# Rows per multi-row statement, largest first (a batch of 79 runs as 64 + 3 x 4 + 3 x 1).
CHUNK_SIZES = (64, 16, 4, 1)


class AppendOps(Protocol):
    def existing(self, keys: set[Key]) -> dict[Key, Message]:
        """Stored messages for these (sender, cid) pairs."""

    def bump_seqs(self, counts: dict[str, int]) -> dict[str, int]:
        """Add ``counts[conv]`` to each conversation's last seq (creating it); returns
        the new last seq of each."""

    def insert(self, rows: list[Row]) -> list[int]:
        """Insert message rows (``ROW_FIELDS`` order); returns their ids in order."""

    def index(self, docs: list[tuple[int, str]]) -> None:
        """Add (message id, text) to the search index."""

    def mark_read(self, marks: Iterable[tuple[int, str, int]]) -> None:
        """Raise (user, conv) read and delivered cursors to at least seq."""

    def mention(self, marks: list[tuple[int, str, int]], everyone: list[tuple[str, int]]) -> None:
        """Raise (user, conv) mention seqs, and (conv) @all mention seqs, to at least seq."""


@runtime_checkable
class FusedAppend(Protocol):
    """Ops that store fresh drafts in one step (seqs, rows, index, cursors together)."""

    def existing(self, keys: set[Key]) -> dict[Key, Message]:
        """Stored messages for these (sender, cid) pairs."""

    def append(self, drafts: Sequence[Draft], ts: int) -> list[Message]:
        """Store ``drafts`` (each cid new) as messages with timestamp ``ts``."""


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

    def bump_seqs(self, counts: dict[str, int]) -> dict[str, int]:
        # sorted: every writer locks the conversations' rows in the same order
        return {conv: self._bump_seq(conv, counts[conv]) for conv in sorted(counts)}

    def _bump_seq(self, conv: str, n: int) -> int:
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
        return self._bump_seq(conv, n)

    def insert(self, rows: list[Row]) -> list[int]:
        fields = ROW_FIELDS[: len(rows[0])] if rows else ROW_FIELDS
        params = [dict(zip(fields, r, strict=True)) for r in rows]
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

    def mention(self, marks: list[tuple[int, str, int]], everyone: list[tuple[str, int]]) -> None:
        if marks:
            stmt = self._insert(cursors)
            stmt = stmt.on_conflict_do_update(
                index_elements=[cursors.c.user_id, cursors.c.conv],
                set_={"mention_seq": greatest(cursors.c.mention_seq, stmt.excluded.mention_seq)},
            )
            rows = [{"user_id": u, "conv": c, "delivered_seq": 0, "read_seq": 0, "mention_seq": s} for u, c, s in marks]
            self._conn.execute(stmt, rows)
        for conv, seq in everyone:
            self._conn.execute(
                update(conversations).where(conversations.c.conv == conv)
                .values(mention_all_seq=greatest(conversations.c.mention_all_seq, seq))
            )


@functools.cache
def _multi_row_sql(template: str, width: int, size: int) -> str:
    """``template`` with ``size`` groups of ``width`` placeholders (a handful of texts)."""
    group = "(" + ", ".join("?" * width) + ")"
    return template.format(", ".join([group] * size))


class SqliteAppendOps:
    """A handful of SQLite statements per batch, whatever its size.

    pysqlite releases the GIL around every ``sqlite3_step`` and must win it back from
    the event loop afterwards, which waits out the switch interval (5 ms) whenever the
    loop is busy. Run row by row, a batch of 256 messages was ~1,300 steps, and under
    load its transaction took 110-180 ms of wall time for 14-29 ms of the writer's CPU:
    the acks and deliveries queued behind it were the chat run's p99. So rows go in
    multi-row statements, and reads return one row per match (none for new cids) or
    one JSON row.
    """

    # CROSS JOIN: the keys are the outer loop, each one an index lookup ("(userid, cid)
    # IN (VALUES …)" scans the whole index instead).
    _SELECT = (
        f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM (VALUES {{}}) AS k "  # noqa: S608 - fixed
        "CROSS JOIN messages AS m ON m.userid = k.column1 AND m.cid = k.column2"
    )
    _BUMP = (
        "INSERT INTO conversations (conv, last_seq) VALUES {} "
        "ON CONFLICT (conv) DO UPDATE SET last_seq = last_seq + excluded.last_seq"
    )
    _LAST_SEQS = "SELECT json_group_object(conv, last_seq) FROM conversations WHERE conv IN (VALUES {})"
    _MAX_ID = "SELECT max(id) FROM messages"
    _INSERT = f"INSERT INTO messages (id, {', '.join(ROW_FIELDS)}) VALUES {{}}"  # noqa: S608 - fixed
    _INSERT_PLAIN = f"INSERT INTO messages (id, {', '.join(ROW_FIELDS[:PLAIN_ROW])}) VALUES {{}}"  # noqa: S608
    _INDEX = "INSERT INTO message_fts (rowid, terms) VALUES {}"
    _READ = (
        "INSERT INTO cursors (user_id, conv, delivered_seq, read_seq) VALUES {} "
        "ON CONFLICT (user_id, conv) DO UPDATE SET read_seq = max(read_seq, excluded.read_seq), "
        "delivered_seq = max(delivered_seq, excluded.delivered_seq)"
    )

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur
        # bound parameters per statement (32,766 by default since SQLite 3.32)
        self._max_params = cur.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)

    def _run(self, template: str, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """``template`` with its ``{}`` filled by ``(?, ...)`` groups, run over ``rows``
        in chunks of a few fixed sizes (so pysqlite's statement cache holds every SQL
        text and none is parsed twice) within SQLite's bound-parameter limit; returns
        every result row."""
        out: list[tuple[Any, ...]] = []
        if not rows:
            return out
        width = len(rows[0])
        at = 0
        for size in CHUNK_SIZES:
            if (size * width > self._max_params and size > 1) or len(rows) - at < size:
                continue
            sql = _multi_row_sql(template, width, size)
            while len(rows) - at >= size:
                chunk = rows[at : at + size]
                out.extend(self._cur.execute(sql, [v for row in chunk for v in row]).fetchall())
                at += size
        return out

    def existing(self, keys: set[Key]) -> dict[Key, Message]:
        found: dict[Key, Message] = {}
        for row in self._run(self._SELECT, sorted(keys)):
            values = dict(zip(_COLUMNS, row, strict=True))
            values["recalled"] = bool(values["recalled"])  # sqlite3 gives 0/1
            values["forwarded"] = bool(values["forwarded"])
            found[(values["userid"], values["cid"])] = Message(**values)
        return found

    def bump_seqs(self, counts: dict[str, int]) -> dict[str, int]:
        # The writer holds SQLite's write lock (BEGIN IMMEDIATE): nobody else moves
        # these conversations between the upsert and the read.
        self._run(self._BUMP, list(counts.items()))
        last: dict[str, int] = {}
        for (doc,) in self._run(self._LAST_SEQS, [(conv,) for conv in counts]):
            last.update(orjson.loads(doc))
        return last

    def insert(self, rows: list[Row]) -> list[int]:
        # Ids are given, not left to SQLite: the transaction holds the write lock
        # (BEGIN IMMEDIATE), so max(id) + 1, + 2, ... are free and are what SQLite
        # would pick itself; this lets multi-row statements insert the whole batch.
        first = (self._cur.execute(self._MAX_ID).fetchone()[0] or 0) + 1
        ids = list(range(first, first + len(rows)))
        template = self._INSERT_PLAIN if rows and len(rows[0]) == PLAIN_ROW else self._INSERT
        self._run(template, [(i, *r) for i, r in zip(ids, rows, strict=True)])
        return ids

    def index(self, docs: list[tuple[int, str]]) -> None:
        self._run(self._INDEX, [(i, terms) for i, text in docs if (terms := index_terms(text))])

    def mark_read(self, marks: Iterable[tuple[int, str, int]]) -> None:
        self._run(self._READ, [(u, c, s, s) for u, c, s in marks])

    _MENTION = (
        "INSERT INTO cursors (user_id, conv, delivered_seq, read_seq, mention_seq) VALUES {} "
        "ON CONFLICT (user_id, conv) DO UPDATE SET mention_seq = max(mention_seq, excluded.mention_seq)"
    )
    _MENTION_ALL = "UPDATE conversations SET mention_all_seq = max(mention_all_seq, ?) WHERE conv = ?"

    def mention(self, marks: list[tuple[int, str, int]], everyone: list[tuple[str, int]]) -> None:
        self._run(self._MENTION, [(u, c, 0, 0, s) for u, c, s in marks])
        for conv, seq in everyone:
            self._cur.execute(self._MENTION_ALL, (seq, conv))



class StoredBefore(Exception):
    """The one-statement append found a cid of its batch already stored: it wrote
    nothing; run the batch with the dedup read first."""


class PgAppendOps:
    """The append on PostgreSQL in one statement, whatever the batch's size, on
    :meth:`imhub.store.db.Database.write_pg`'s connection: over arrays (``unnest``) it
    checks that no cid of the batch is stored yet, allocates the seqs, inserts the
    messages and their search rows and raises the senders' cursors (a batch with a
    stored cid is run again with the dedup read first: a resend is rare). One statement is one transaction,
    so the batch is stored whole or not at all, and it commits (and is durable) before
    it returns; no BEGIN or COMMIT round trips. Row locks are taken as the Core path
    takes them: conversations sorted by id, then cursors sorted by (user, conversation)
    (the cursors' upsert aggregates over every allocated seq, so it starts only after
    the last conversation is locked). Batches with mentions go the Core way
    (``MessageStore.append_batch``)."""

    # LATERAL ... LIMIT 1: one index lookup per key, whatever the table's statistics say
    # (a plain join was planned as a hash join over a sequential scan of messages while
    # the table grew faster than autovacuum analysed it: 1 ms for 24 keys on 2,000 rows).
    _EXISTING = (
        f"SELECT {', '.join('m.' + c for c in _COLUMNS)} "  # noqa: S608 - fixed names
        "FROM unnest($1::bigint[], $2::text[]) AS k(userid, cid) CROSS JOIN LATERAL "
        "(SELECT * FROM messages WHERE userid = k.userid AND cid = k.cid LIMIT 1) AS m"
    )
    # back: how many later messages of the same conversation the batch holds, so a
    # message's seq is its conversation's new last seq minus back.
    _APPEND = """
WITH d AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::int[], $5::bigint[], $6::int[], $7::text[],
                       $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::bigint[],
                       $14::bool[], $15::text[])
    WITH ORDINALITY AS d(conv, back, userid, cmd, dstid, media, content, pic, url, memo, amount, cid,
                         reply_to, forwarded, terms, ord)
), dup AS (
  SELECT 1 FROM d CROSS JOIN LATERAL (SELECT 1 FROM messages WHERE userid = d.userid AND cid = d.cid LIMIT 1) AS m
  WHERE $19 LIMIT 1
), bump AS (
  INSERT INTO conversations AS c (conv, last_seq)
  SELECT conv, n FROM unnest($16::text[], $17::bigint[]) AS t(conv, n) WHERE NOT EXISTS (SELECT 1 FROM dup)
  ORDER BY conv
  ON CONFLICT (conv) DO UPDATE SET last_seq = c.last_seq + excluded.last_seq
  RETURNING c.conv, c.last_seq
), r AS (
  SELECT d.*, b.last_seq - d.back AS seq FROM d JOIN bump AS b ON b.conv = d.conv
), ins AS (
  INSERT INTO messages (conv, seq, ts, userid, cmd, dstid, media, content, pic, url, memo, amount, cid,
                        reply_to, forwarded)
  SELECT conv, seq, $18, userid, cmd, dstid, media, content, pic, url, memo, amount, cid, reply_to, forwarded
  FROM r ORDER BY ord
  RETURNING id, conv, seq
), idx AS (
  INSERT INTO message_search (id, tsv)
  SELECT ins.id, to_tsvector('simple', r.terms) FROM ins JOIN r ON r.conv = ins.conv AND r.seq = ins.seq
  WHERE r.terms <> ''
), cur AS (
  INSERT INTO cursors AS k (user_id, conv, delivered_seq, read_seq)
  SELECT userid, conv, max(seq), max(seq) FROM r WHERE userid <> 0 GROUP BY userid, conv ORDER BY userid, conv
  ON CONFLICT (user_id, conv) DO UPDATE SET read_seq = greatest(k.read_seq, excluded.read_seq),
    delivered_seq = greatest(k.delivered_seq, excluded.delivered_seq)
)
SELECT id, conv, seq FROM ins UNION ALL SELECT 0, NULL, 0 FROM dup
"""

    def __init__(self, pg: PgStatements, check_in_append: bool = True) -> None:
        self._pg = pg
        # True: existing() answers "none" without asking, and the append statement
        # itself checks the cids (one round trip per batch instead of two); if one is
        # stored already, it writes nothing and raises StoredBefore, and the caller
        # runs the batch again with check_in_append=False (the dedup read first).
        self._check = check_in_append

    def existing(self, keys: set[Key]) -> dict[Key, Message]:
        if self._check:
            return {}
        ordered = sorted(keys)
        rows = self._pg.fetch(self._EXISTING, [u for u, _ in ordered], [c for _, c in ordered])
        return {(r["userid"], r["cid"]): Message(**dict(r)) for r in rows}

    def append(self, drafts: Sequence[Draft], ts: int) -> list[Message]:
        """Store ``drafts`` (none with mentions, no cid twice) as new messages."""
        convs = [d.conv for d in drafts]
        left: dict[str, int] = {}
        for conv in convs:
            left[conv] = left.get(conv, 0) + 1
        per_conv = sorted(left.items())
        backs: list[int] = []
        for conv in convs:
            left[conv] -= 1
            backs.append(left[conv])
        terms = [index_terms(text) if d.media in SEARCHABLE and (text := searchable_text(d)).strip() else ""
                 for d in drafts]
        returned = self._pg.fetch(
            self._APPEND, convs, backs, [d.userid for d in drafts], [d.cmd for d in drafts],
            [d.dstid for d in drafts], [d.media for d in drafts], [d.content for d in drafts],
            [d.pic for d in drafts], [d.url for d in drafts], [d.memo for d in drafts], [d.amount for d in drafts],
            [d.cid for d in drafts], [d.reply_to for d in drafts], [d.forwarded for d in drafts], terms,
            [c for c, _ in per_conv], [n for _, n in per_conv], ts, self._check,
        )
        if returned and returned[-1][0] == 0:
            raise StoredBefore
        ids: dict[tuple[str, int], int] = {}
        last: dict[str, int] = {}
        for ident, conv, seq in returned:
            ids[(conv, seq)] = ident
            if seq > last.get(conv, 0):
                last[conv] = seq
        stored: list[Message] = []
        for d, conv, back in zip(drafts, convs, backs, strict=True):
            seq = last[conv] - back
            stored.append(Message(
                ids[(conv, seq)], conv, seq, ts, d.userid, d.cmd, d.dstid, d.media, d.content, d.pic, d.url, d.memo,
                d.amount, d.cid, False, d.reply_to, "", d.forwarded, 0,
            ))
        return stored
