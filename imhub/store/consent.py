"""Consent between users: friend requests, blocks and privacy settings.

A friend request row records its outcome (``pending`` -> ``accepted`` | ``declined``
| ``cancelled``); a pending row past ``expires`` counts as ``expired`` (decided when it
is read, so no sweeper is needed). Accepting writes the friendship in the same
transaction, so a request is never accepted without the friendship or vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from imhub.clock import now_ms
from imhub.store.db import Database
from imhub.store.tables import blocks, contacts, friend_requests, privacy


@dataclass(frozen=True, slots=True)
class FriendRequest:
    id: int
    from_id: int
    to_id: int
    status: str  # pending | accepted | declined | cancelled | expired
    memo: str
    created: int
    expires: int
    decided: int


@dataclass(frozen=True, slots=True)
class Privacy:
    add_policy: str = "nobody"  # who may make me a friend without a request: nobody | anyone
    findable_by_mobile: bool = True
    show_mobile: bool = False


DEFAULT_PRIVACY = Privacy()


def _request(r: Any, now: int) -> FriendRequest:
    status = r.status
    if status == "pending" and r.expires <= now:
        status = "expired"
    return FriendRequest(
        id=int(r.id), from_id=int(r.from_id), to_id=int(r.to_id), status=status, memo=r.memo,
        created=int(r.created), expires=int(r.expires), decided=int(r.decided),
    )


class RequestNotPending(Exception):
    """The request was already decided (or expired); ``status`` says how."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class ConsentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- friend requests -----------------------------------------------------------

    async def create_request(self, from_id: int, to_id: int, memo: str, ttl_ms: int) -> FriendRequest:
        now = now_ms()
        values = dict(from_id=from_id, to_id=to_id, status="pending", memo=memo, created=now, expires=now + ttl_ms)

        def txn(conn: Connection) -> int:
            stmt = insert(friend_requests).values(**values).returning(friend_requests.c.id)
            return int(conn.execute(stmt).scalar_one())

        rid = await self._db.write(txn)
        return FriendRequest(id=rid, decided=0, **values)  # type: ignore[arg-type]

    async def get_request(self, request_id: int) -> FriendRequest | None:
        rows = await self._db.fetch(select(friend_requests).where(friend_requests.c.id == request_id))
        return _request(rows[0], now_ms()) if rows else None

    async def latest_between(self, from_id: int, to_id: int) -> FriendRequest | None:
        """The newest request from ``from_id`` to ``to_id``."""
        rows = await self._db.fetch(
            select(friend_requests)
            .where(friend_requests.c.from_id == from_id, friend_requests.c.to_id == to_id)
            .order_by(friend_requests.c.id.desc())
            .limit(1)
        )
        return _request(rows[0], now_ms()) if rows else None

    async def pending_for(self, user_id: int, *, incoming: bool) -> list[FriendRequest]:
        """Pending, unexpired requests to (``incoming``) or from the user, newest first."""
        now = now_ms()
        side = friend_requests.c.to_id if incoming else friend_requests.c.from_id
        rows = await self._db.fetch(
            select(friend_requests)
            .where(side == user_id, friend_requests.c.status == "pending", friend_requests.c.expires > now)
            .order_by(friend_requests.c.id.desc())
            .limit(500)
        )
        return [_request(r, now) for r in rows]

    async def decide(self, request_id: int, status: str, *, befriend: bool = False) -> FriendRequest:
        """Move a pending request to ``status``; with ``befriend`` also write the
        friendship (both directions), in the same transaction. Raises
        :class:`RequestNotPending` if it was decided or expired meanwhile."""
        now = now_ms()

        def txn(conn: Connection) -> FriendRequest:
            r = conn.execute(select(friend_requests).where(friend_requests.c.id == request_id)).first()
            if r is None:
                raise RequestNotPending("unknown")
            current = _request(r, now)
            if current.status != "pending":
                raise RequestNotPending(current.status)
            # The WHERE repeats "pending": of two concurrent deciders only one wins.
            changed = conn.execute(
                update(friend_requests)
                .where(friend_requests.c.id == request_id, friend_requests.c.status == "pending")
                .values(status=status, decided=now)
            ).rowcount
            if not changed:
                raise RequestNotPending("decided")
            if befriend:
                a, b = current.from_id, current.to_id
                exists = conn.execute(
                    select(contacts.c.dst_id).where(contacts.c.owner_id == a, contacts.c.dst_id == b)
                ).first()
                if exists is None:
                    conn.execute(
                        insert(contacts),
                        [{"owner_id": a, "dst_id": b, "created": now}, {"owner_id": b, "dst_id": a, "created": now}],
                    )
            # Any request the other way is settled by this decision too.
            if befriend:
                conn.execute(
                    update(friend_requests)
                    .where(
                        friend_requests.c.from_id == current.to_id,
                        friend_requests.c.to_id == current.from_id,
                        friend_requests.c.status == "pending",
                    )
                    .values(status="accepted", decided=now)
                )
            return FriendRequest(**{**_asdict(current), "status": status, "decided": now})

        return await self._db.write(txn)

    async def cancel_pending_between(self, a: int, b: int) -> None:
        """Cancel every pending request between the two (either direction): a block."""
        await self._db.execute(
            update(friend_requests)
            .where(
                or_(
                    (friend_requests.c.from_id == a) & (friend_requests.c.to_id == b),
                    (friend_requests.c.from_id == b) & (friend_requests.c.to_id == a),
                ),
                friend_requests.c.status == "pending",
            )
            .values(status="cancelled", decided=now_ms())
        )

    # --- blocks --------------------------------------------------------------------

    async def block(self, owner_id: int, dst_id: int) -> bool:
        """True if the block is new."""
        try:
            await self._db.execute(insert(blocks).values(owner_id=owner_id, dst_id=dst_id, created=now_ms()))
        except IntegrityError:
            return False
        return True

    async def unblock(self, owner_id: int, dst_id: int) -> bool:
        stmt = delete(blocks).where(blocks.c.owner_id == owner_id, blocks.c.dst_id == dst_id)
        return bool(await self._db.execute(stmt))

    async def has_blocked(self, owner_id: int, dst_id: int) -> bool:
        """Did ``owner_id`` block ``dst_id``?"""
        rows = await self._db.fetch(
            select(blocks.c.dst_id).where(blocks.c.owner_id == owner_id, blocks.c.dst_id == dst_id)
        )
        return bool(rows)

    async def blocked_by_either(self, a: int, b: int) -> bool:
        rows = await self._db.fetch(
            select(blocks.c.dst_id).where(
                or_(
                    (blocks.c.owner_id == a) & (blocks.c.dst_id == b),
                    (blocks.c.owner_id == b) & (blocks.c.dst_id == a),
                )
            )
        )
        return bool(rows)

    async def blocked_ids(self, owner_id: int) -> list[int]:
        rows = await self._db.fetch(
            select(blocks.c.dst_id).where(blocks.c.owner_id == owner_id).order_by(blocks.c.created, blocks.c.dst_id)
        )
        return [int(r[0]) for r in rows]

    # --- privacy -------------------------------------------------------------------

    async def privacy_of(self, user_id: int) -> Privacy:
        rows = await self._db.fetch(select(privacy).where(privacy.c.user_id == user_id))
        if not rows:
            return DEFAULT_PRIVACY
        r = rows[0]
        return Privacy(r.add_policy, bool(r.findable_by_mobile), bool(r.show_mobile))

    async def privacy_of_many(self, user_ids: list[int]) -> dict[int, Privacy]:
        """Settings of those users who changed any (the rest have the defaults)."""
        if not user_ids:
            return {}
        rows = await self._db.fetch(select(privacy).where(privacy.c.user_id.in_(user_ids)))
        return {int(r.user_id): Privacy(r.add_policy, bool(r.findable_by_mobile), bool(r.show_mobile)) for r in rows}

    async def set_privacy(self, user_id: int, settings: Privacy) -> None:
        values = dict(
            add_policy=settings.add_policy,
            findable_by_mobile=settings.findable_by_mobile,
            show_mobile=settings.show_mobile,
        )

        def txn(conn: Connection) -> None:
            if conn.execute(update(privacy).where(privacy.c.user_id == user_id).values(**values)).rowcount == 0:
                conn.execute(insert(privacy).values(user_id=user_id, **values))

        await self._db.write(txn)


def _asdict(r: FriendRequest) -> dict[str, Any]:
    return {f: getattr(r, f) for f in FriendRequest.__dataclass_fields__}
