"""Friends (contacts) and groups (communities, members).

A friendship is two ``contacts`` rows (one per direction) written in one transaction,
so "a is b's friend" and "b is a's friend" are never out of step. The owner of a group
is also a row in ``members``: every "who receives this group" question is one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from imhub.clock import now_ms
from imhub.domain.model import group_conv
from imhub.store.db import Database, ReadBatcher, Rows
from imhub.store.tables import communities, contacts, conversations, join_requests, members, past_members


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: int
    name: str
    ownerid: int
    icon: str
    cate: int
    memo: str
    createat: int
    join_policy: str = "open"
    history_visibility: str = "shared"


class AlreadyFriends(Exception):
    """The two users are already friends (the contacts rows exist)."""


class AlreadyMember(Exception):
    """The user is already a member of the group."""


class TooManyGroups(Exception):
    """The owner already owns the most groups allowed."""


class GroupFull(Exception):
    """The group already has the most members allowed."""


def _group_last_seq(conn: Connection, group_id: int) -> int:
    """The group conversation's last seq: a joiner's ``join_seq``, a leaver's ``leave_seq``."""
    last = conn.execute(
        select(conversations.c.last_seq).where(conversations.c.conv == group_conv(group_id))
    ).scalar()
    return int(last or 0)


def _group(r: Any) -> GroupRow:
    return GroupRow(**dict(r._mapping))


# The questions every connect, send and presence change asks: built once.
_ARE_FRIENDS = select(contacts.c.dst_id).where(
    contacts.c.owner_id == bindparam("a"), contacts.c.dst_id == bindparam("b")
)
_FRIEND_IDS = (
    select(contacts.c.dst_id)
    .where(contacts.c.owner_id == bindparam("u"))
    .order_by(contacts.c.created, contacts.c.dst_id)
)
_GROUP_IDS_OF = select(members.c.group_id).where(members.c.user_id == bindparam("u")).order_by(members.c.group_id)
_IS_MEMBER = select(members.c.user_id).where(members.c.group_id == bindparam("g"), members.c.user_id == bindparam("u"))
_MEMBER_IDS = (
    select(members.c.user_id).where(members.c.group_id == bindparam("g")).order_by(members.c.joined, members.c.user_id)
)


def _friends_in(rows: Rows, a: int, b: int) -> bool:
    return bool(rows(_ARE_FRIENDS, {"a": a, "b": b}))


def _friends_of(rows: Rows, user_id: int) -> list[int]:
    return [int(r[0]) for r in rows(_FRIEND_IDS, {"u": user_id})]


def _friends_of_each(rows: Rows, user_ids: list[int]) -> list[list[int]]:
    return [_friends_of(rows, uid) for uid in user_ids]


def circles_of(rows: Rows, user_id: int) -> tuple[list[int], list[int]]:
    """In a :meth:`Database.read_rows` transaction: (group ids, friend ids) of ``user_id``."""
    groups = [int(r[0]) for r in rows(_GROUP_IDS_OF, {"u": user_id})]
    return groups, _friends_of(rows, user_id)


# Friends reads in one transaction at most (see SocialStore.friend_ids).
FRIENDS_BATCH = 256


class SocialStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._friends: ReadBatcher[int, list[int]] = ReadBatcher(
            self._read_friends, FRIENDS_BATCH, "imhub-friends-reads"
        )

    @property
    def db(self) -> Database:
        return self._db

    # --- friends -------------------------------------------------------------------

    async def add_friendship(self, a: int, b: int) -> None:
        """Make ``a`` and ``b`` friends both ways, atomically.

        Raises :class:`AlreadyFriends` if either direction exists (the primary key
        refuses the duplicate and the whole transaction rolls back).
        """
        now = now_ms()
        rows = [{"owner_id": a, "dst_id": b, "created": now}, {"owner_id": b, "dst_id": a, "created": now}]
        try:
            await self._db.execute(insert(contacts), rows)
        except IntegrityError as exc:
            raise AlreadyFriends(f"{a}-{b}") from exc

    async def remove_friendship(self, a: int, b: int) -> bool:
        """Remove both directions; True if there was a friendship."""
        removed = await self._db.execute(
            delete(contacts).where(
                ((contacts.c.owner_id == a) & (contacts.c.dst_id == b))
                | ((contacts.c.owner_id == b) & (contacts.c.dst_id == a))
            )
        )
        return bool(removed)

    async def are_friends(self, a: int, b: int) -> bool:
        return await self._db.read_rows(_friends_in, a, b)

    async def friend_ids(self, user_id: int) -> list[int]:
        """Ids of ``user_id``'s friends, oldest friendship first. On the plain read
        path (every last disconnect asks it, for the offline announcement: a pooled
        SQLAlchemy transaction cost ~10 % of a worker in a reconnect storm), and the
        reads asked for together share one transaction (:class:`ReadBatcher`): a
        reconnect storm takes every user offline at once, and a reader-thread hop per
        user queued the reconnects' handshake reads behind thousands of them."""
        return await self._friends.get(user_id)

    async def _read_friends(self, user_ids: list[int]) -> list[list[int]]:
        return await self._db.read_rows(_friends_of_each, user_ids)

    # --- groups --------------------------------------------------------------------

    async def create_group(
        self,
        *,
        ownerid: int,
        name: str,
        icon: str = "",
        cate: int = 0,
        memo: str = "",
        max_owned: int | None = None,
        join_policy: str = "approval",
        history_visibility: str = "joined",
    ) -> GroupRow:
        """Insert a group with its owner as first member, in one transaction.

        With ``max_owned``, raises :class:`TooManyGroups` when the owner already owns
        that many. (Count-then-insert: two concurrent creates by the same owner may
        overshoot by one on PostgreSQL; the limit is an abuse guard, not an invariant.)
        """
        now = now_ms()
        values = dict(
            name=name, ownerid=ownerid, icon=icon, cate=cate, memo=memo, createat=now,
            join_policy=join_policy, history_visibility=history_visibility,
        )

        def txn(conn: Connection) -> int:
            if max_owned is not None:
                owned = conn.execute(
                    select(func.count()).select_from(communities).where(communities.c.ownerid == ownerid)
                ).scalar_one()
                if owned >= max_owned:
                    raise TooManyGroups(str(ownerid))
            group_id = conn.execute(insert(communities).values(**values).returning(communities.c.id)).scalar_one()
            conn.execute(insert(members).values(group_id=group_id, user_id=ownerid, joined=now, role="owner"))
            return int(group_id)

        group_id = await self._db.write(txn)
        return GroupRow(id=group_id, **values)  # type: ignore[arg-type]

    async def get_group(self, group_id: int) -> GroupRow | None:
        rows = await self._db.fetch(select(communities).where(communities.c.id == group_id))
        return _group(rows[0]) if rows else None

    async def groups_of(self, user_id: int) -> list[GroupRow]:
        """The groups ``user_id`` belongs to (owned ones included), by join time."""
        rows = await self._db.fetch(
            select(communities)
            .join(members, members.c.group_id == communities.c.id)
            .where(members.c.user_id == user_id)
            .order_by(members.c.joined, communities.c.id)
        )
        return [_group(r) for r in rows]

    async def group_ids_of(self, user_id: int) -> list[int]:
        return [int(r[0]) for r in await self._db.fetch(_GROUP_IDS_OF, {"u": user_id})]

    async def count_owned(self, ownerid: int) -> int:
        rows = await self._db.fetch(
            select(func.count()).select_from(communities).where(communities.c.ownerid == ownerid)
        )
        return int(rows[0][0])

    async def rename_group(self, group_id: int, name: str) -> GroupRow | None:
        await self._db.execute(update(communities).where(communities.c.id == group_id).values(name=name))
        return await self.get_group(group_id)

    # --- members -------------------------------------------------------------------

    async def add_member(self, group_id: int, user_id: int, *, max_members: int | None = None) -> int:
        """Add a member at the group's current end (their ``join_seq``, returned); any
        pending join request of theirs and their former-member row go.

        Raises :class:`AlreadyMember` if the row exists, :class:`GroupFull` when the
        group has ``max_members`` already (count-then-insert, like the owned-groups
        limit: concurrent joins on PostgreSQL may overshoot by a few)."""

        def txn(conn: Connection) -> int:
            if max_members is not None:
                count = conn.execute(
                    select(func.count()).select_from(members).where(members.c.group_id == group_id)
                ).scalar_one()
                if count >= max_members:
                    raise GroupFull(str(group_id))
            join_seq = _group_last_seq(conn, group_id)
            conn.execute(
                insert(members).values(group_id=group_id, user_id=user_id, joined=now_ms(), join_seq=join_seq)
            )
            where = dict(group_id=group_id, user_id=user_id)
            conn.execute(delete(join_requests).filter_by(**where))
            conn.execute(delete(past_members).filter_by(**where))
            return join_seq

        try:
            return await self._db.write(txn)
        except IntegrityError as exc:
            raise AlreadyMember(f"{group_id}/{user_id}") from exc

    async def remove_member(self, group_id: int, user_id: int) -> bool:
        """True if ``user_id`` was a member and is not any more. What they could see
        stays readable to them (a ``past_members`` row up to the current last seq)."""

        def txn(conn: Connection) -> bool:
            row = conn.execute(
                select(members.c.join_seq).where(members.c.group_id == group_id, members.c.user_id == user_id)
            ).first()
            if row is None:
                return False
            conn.execute(delete(members).where(members.c.group_id == group_id, members.c.user_id == user_id))
            conn.execute(
                insert(past_members).values(
                    group_id=group_id, user_id=user_id, join_seq=int(row[0]),
                    leave_seq=_group_last_seq(conn, group_id), left_at=now_ms(),
                )
            )
            return True

        return await self._db.write(txn)

    async def is_member(self, group_id: int, user_id: int) -> bool:
        return bool(await self._db.fetch(_IS_MEMBER, {"g": group_id, "u": user_id}))

    async def member_ids(self, group_id: int) -> list[int]:
        """Members of ``group_id`` in join order (the owner first)."""
        return [int(r[0]) for r in await self._db.fetch(_MEMBER_IDS, {"g": group_id})]
