"""Web Push subscriptions (table ``push_subscriptions``): one row per browser endpoint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from imhub.store.db import Database
from imhub.store.engine import dialect_insert
from imhub.store.tables import conv_prefs, members
from imhub.store.tables import push_subscriptions as ps


@dataclass(frozen=True, slots=True)
class Subscription:
    user_id: int
    endpoint: str
    p256dh: str
    auth: str

    def info(self) -> dict[str, object]:
        """The Push API's PushSubscription JSON, as pywebpush takes it."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class PushStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = dialect_insert(db.async_engine)

    async def subscribe(self, sub: Subscription, now_ms: int, keep: int) -> None:
        """Store (or move to this user, with new keys) the browser's subscription; the
        user keeps at most ``keep`` subscriptions, the newest."""
        stmt = self._insert(ps).values(
            user_id=sub.user_id, endpoint=sub.endpoint, p256dh=sub.p256dh, auth=sub.auth, created=now_ms
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[ps.c.endpoint],
            set_={"user_id": sub.user_id, "p256dh": sub.p256dh, "auth": sub.auth, "created": now_ms},
        )

        def txn(conn: Connection) -> None:
            conn.execute(stmt)
            ids = conn.execute(
                select(ps.c.id).where(ps.c.user_id == sub.user_id).order_by(ps.c.created.desc(), ps.c.id.desc())
            ).scalars().all()
            if len(ids) > keep:
                conn.execute(delete(ps).where(ps.c.id.in_(ids[keep:])))

        await self._db.write(txn)

    async def unsubscribe(self, user_id: int, endpoint: str) -> bool:
        return await self._db.execute(delete(ps).where(ps.c.user_id == user_id, ps.c.endpoint == endpoint)) > 0

    async def remove(self, endpoint: str) -> None:
        """The push service says the subscription is gone (404/410)."""
        await self._db.execute(delete(ps).where(ps.c.endpoint == endpoint))

    async def of_users(self, user_ids: Iterable[int]) -> list[Subscription]:
        users = list(user_ids)
        if not users:
            return []
        rows = await self._db.fetch(select(ps).where(ps.c.user_id.in_(users)))
        return [Subscription(int(r.user_id), str(r.endpoint), str(r.p256dh), str(r.auth)) for r in rows]

    async def of_group_members(self, group_id: int, but: int = 0) -> list[Subscription]:
        """The subscriptions of the members of ``group_id`` other than ``but``: one join
        that returns only the members who subscribed (a group message used to read all
        of a 10k group's member ids into Python to find the few with a subscription)."""
        rows = await self._db.fetch(
            select(ps)
            .join(members, members.c.user_id == ps.c.user_id)
            .where(members.c.group_id == group_id, ps.c.user_id != but)
        )
        return [Subscription(int(r.user_id), str(r.endpoint), str(r.p256dh), str(r.auth)) for r in rows]

    async def muted_among(self, conv: str, user_ids: Iterable[int]) -> set[int]:
        """Which of these users muted ``conv`` (their conversation settings)."""
        users = list(user_ids)
        if not users:
            return set()
        rows = await self._db.fetch(
            select(conv_prefs.c.user_id).where(
                conv_prefs.c.conv == conv, conv_prefs.c.user_id.in_(users), conv_prefs.c.muted.is_(True)
            )
        )
        return {int(r[0]) for r in rows}
