"""Webhook endpoints, the delivery outbox and the lease that lets exactly one process
drain it (docs/server-api.md "Webhooks")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, or_, select, update

from imhub.clock import now_ms
from imhub.domain.model import Message
from imhub.store.db import Database
from imhub.store.engine import dialect_insert
from imhub.store.tables import leases, messages, webhook_cursor, webhook_deliveries, webhook_endpoints


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    url: str
    secret: str
    events: frozenset[str]
    created: int

    def __repr__(self) -> str:  # never the secret, wherever a row ends up printed
        return f"Endpoint(id={self.id}, url={self.url!r}, events={sorted(self.events)})"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event to enqueue for one endpoint."""

    endpoint_id: int
    event_id: str
    event: str
    okey: str
    pos: int
    body: str


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery whose turn it is."""

    id: int
    endpoint_id: int
    event_id: str
    event: str
    okey: str
    body: str
    created: int
    attempts: int


def _rows(items: list[Outgoing]) -> list[dict[str, Any]]:
    now = now_ms()
    return [
        {"endpoint_id": i.endpoint_id, "event_id": i.event_id, "event": i.event, "okey": i.okey[:64], "pos": i.pos,
         "body": i.body, "created": now, "attempts": 0, "next_at": now, "state": "pending", "last_error": ""}
        for i in items
    ]


def _endpoint(r: Any) -> Endpoint:
    return Endpoint(int(r.id), r.url, r.secret, frozenset(e for e in r.events.split(",") if e), int(r.created))


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = dialect_insert(db.async_engine)

    # --- endpoints ------------------------------------------------------------------

    async def add_endpoint(self, url: str, secret: str, events: list[str]) -> Endpoint:
        created = now_ms()
        stmt = insert(webhook_endpoints).values(
            url=url, secret=secret, events=",".join(events), created=created
        ).returning(webhook_endpoints.c.id)
        endpoint_id = await self._db.write(lambda conn: conn.execute(stmt).scalar_one())
        return Endpoint(int(endpoint_id), url, secret, frozenset(events), created)

    async def endpoints(self) -> list[Endpoint]:
        rows = await self._db.fetch(
            select(webhook_endpoints).where(webhook_endpoints.c.removed == 0).order_by(webhook_endpoints.c.id)
        )
        return [_endpoint(r) for r in rows]

    async def remove_endpoint(self, endpoint_id: int) -> bool:
        """Stop sending to it; what it had pending is dropped."""

        def run(conn: Connection) -> bool:
            done = conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.removed == 0)
                .values(removed=now_ms())
            ).rowcount
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.endpoint_id == endpoint_id, webhook_deliveries.c.state == "pending")
                .values(state="failed", last_error="endpoint removed")
            )
            return bool(done)

        return await self._db.write(run)

    # --- the outbox -----------------------------------------------------------------

    async def enqueue(self, items: list[Outgoing]) -> None:
        """Add deliveries in one transaction; an (endpoint, event id) already there is
        skipped (an event is enqueued at most once per endpoint)."""
        if not items:
            return
        rows = _rows(items)
        await self._db.write(lambda conn: conn.execute(self._enqueue_stmt(), rows))

    def _enqueue_stmt(self) -> Any:
        return self._insert(webhook_deliveries).on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])

    async def due(self, now: int, limit: int, settled_before: int) -> list[Due]:
        """The first pending delivery of each (endpoint, okey) in (pos, id) order, if it
        is due and was enqueued before ``settled_before``: a conversation's next event
        waits until its previous one is done (or given up), and a fresh one waits a
        moment for an earlier seq enqueued by another process in the same instant."""
        d = webhook_deliveries
        e = webhook_deliveries.alias("earlier")
        earlier = exists().where(
            e.c.endpoint_id == d.c.endpoint_id, e.c.okey == d.c.okey, e.c.state == "pending",
            or_(e.c.pos < d.c.pos, and_(e.c.pos == d.c.pos, e.c.id < d.c.id)),
        )
        stmt = (
            select(d.c.id, d.c.endpoint_id, d.c.event_id, d.c.event, d.c.okey, d.c.body, d.c.created, d.c.attempts)
            .where(d.c.state == "pending", d.c.next_at <= now, d.c.created < settled_before, ~earlier)
            .order_by(d.c.id)
            .limit(limit)
        )
        return [
            Due(int(r.id), int(r.endpoint_id), r.event_id, r.event, r.okey, r.body, int(r.created), int(r.attempts))
            for r in await self._db.fetch(stmt)
        ]

    async def done(self, delivery_id: int) -> None:
        await self._db.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
            state="done", attempts=webhook_deliveries.c.attempts + 1, last_error=""
        ))

    async def retry(self, delivery_id: int, next_at: int, error: str, *, give_up: bool) -> None:
        await self._db.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
            state="failed" if give_up else "pending", next_at=next_at, last_error=error[:200],
            attempts=webhook_deliveries.c.attempts + 1,
        ))

    async def prune(self, before: int) -> int:
        """Forget finished deliveries created before ``before``."""
        d = webhook_deliveries
        return await self._db.execute(delete(d).where(d.c.state != "pending", d.c.created < before))

    async def states(self) -> dict[str, int]:
        d = webhook_deliveries
        rows = await self._db.fetch(select(d.c.state, func.count().label("n")).group_by(d.c.state))
        return {str(r.state): int(r.n) for r in rows}

    async def any_retrying(self) -> bool:
        d = webhook_deliveries
        return bool(await self._db.fetch(select(d.c.id).where(d.c.state == "pending", d.c.attempts > 0).limit(1)))

    # --- catching up with the messages table ----------------------------------------

    async def messages_after(
        self, cursor_name: str, settled_before: int, limit: int, since: int
    ) -> list[Message] | None:
        """Messages after the cursor stored at ``cursor_name`` with ``ts`` before
        ``settled_before``, in id order; None the first time, with the cursor placed at
        the newest message stored before ``since`` (ms), so that the past is not sent
        but nothing stored since then is skipped."""

        def run(conn: Connection) -> list[Message] | None:
            c = webhook_cursor
            last = conn.execute(select(c.c.last_id).where(c.c.name == cursor_name)).scalar()
            if last is None:
                # Newest first by primary key: stops at the first row older than ``since``.
                past = select(messages.c.id).where(messages.c.ts < since).order_by(messages.c.id.desc()).limit(1)
                conn.execute(insert(c).values(name=cursor_name, last_id=conn.execute(past).scalar() or 0))
                return None
            rows = conn.execute(
                select(messages).where(messages.c.id > last, messages.c.ts < settled_before)
                .order_by(messages.c.id).limit(limit)
            )
            return [Message(**dict(r._mapping)) for r in rows]

        return await self._db.write(run)

    async def enqueue_and_advance(self, items: list[Outgoing], cursor_name: str, last_id: int) -> None:
        """:meth:`enqueue` (what is there already is skipped) and move the cursor, in one
        transaction."""
        rows = _rows(items)
        stmt = self._enqueue_stmt()
        advance = update(webhook_cursor).where(webhook_cursor.c.name == cursor_name).values(last_id=last_id)

        def run(conn: Connection) -> None:
            if rows:
                conn.execute(stmt, rows)
            conn.execute(advance)

        await self._db.write(run)

    # --- the lease ------------------------------------------------------------------

    async def acquire(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take or renew lease ``name`` for ``holder``; False while another holds it.
        One conditional UPDATE: on PostgreSQL a concurrent taker waits for the row lock
        and then finds the lease held; SQLite serialises writers."""
        now = now_ms()
        l = leases  # noqa: E741

        def run(conn: Connection) -> bool:
            conn.execute(
                self._insert(l).values(name=name, holder="", expires=0).on_conflict_do_nothing(index_elements=["name"])
            )
            taken = conn.execute(
                update(l)
                .where(l.c.name == name, (l.c.holder == holder) | (l.c.expires < now))
                .values(holder=holder, expires=now + ttl_ms)
            ).rowcount
            return bool(taken)

        return await self._db.write(run)

    async def release(self, name: str, holder: str) -> None:
        await self._db.execute(
            update(leases).where(leases.c.name == name, leases.c.holder == holder).values(expires=0)
        )
