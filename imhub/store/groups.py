"""Group administration: roles, join policy and history visibility, bans, invites,
join requests, and the one rule of what a user may read of a group
(:func:`visible_range`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from imhub.clock import now_ms
from imhub.store.db import Database
from imhub.store.tables import communities, group_bans, group_invites, join_requests, members, past_members

# A seq past any real one: "no upper bound" for a current member.
NO_END = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SeqRange:
    """Seqs ``lo < seq <= hi`` of a group conversation a user may read."""

    lo: int
    hi: int

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and self.lo < seq <= self.hi


@dataclass(frozen=True, slots=True)
class Invite:
    id: int
    group_id: int
    invitee_id: int | None
    created_by: int
    created: int
    expires: int
    revoked: bool
    uses: int
    link: bool


class AlreadyRequested(Exception):
    """The user already asked to join the group."""


def visible_range_in(conn: Connection, group_id: int, user_id: int) -> SeqRange | None:
    """What ``user_id`` may read of group ``group_id``, or None (never a member).

    - a member: everything under ``shared``; after their ``join_seq`` under ``joined``;
    - a former member: the same lower bound, up to the seq at which they left.
    """
    vis = conn.execute(select(communities.c.history_visibility).where(communities.c.id == group_id)).scalar()
    if vis is None:
        return None
    row = conn.execute(
        select(members.c.join_seq).where(members.c.group_id == group_id, members.c.user_id == user_id)
    ).first()
    if row is not None:
        return SeqRange(int(row[0]) if vis == "joined" else 0, NO_END)
    past = conn.execute(
        select(past_members.c.join_seq, past_members.c.leave_seq).where(
            past_members.c.group_id == group_id, past_members.c.user_id == user_id
        )
    ).first()
    if past is None:
        return None
    return SeqRange(int(past[0]) if vis == "joined" else 0, int(past[1]))


def _invite(r: object) -> Invite:
    m = r._mapping  # type: ignore[attr-defined]
    return Invite(
        id=int(m["id"]), group_id=int(m["group_id"]), invitee_id=m["invitee_id"], created_by=int(m["created_by"]),
        created=int(m["created"]), expires=int(m["expires"]), revoked=bool(m["revoked"]), uses=int(m["uses"]),
        link=m["token_hash"] is not None,
    )


class GroupAdminStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- visibility ----------------------------------------------------------------

    async def visible_range(self, group_id: int, user_id: int) -> SeqRange | None:
        return await self._db.read(visible_range_in, group_id, user_id)

    async def visible_ranges(self, group_ids: list[int], user_id: int) -> dict[int, SeqRange]:
        """:func:`visible_range_in` for several groups (readable ones only), in two
        queries whatever their number: a sync or search asks for all of a user's groups."""
        if not group_ids:
            return {}
        ids = list(set(group_ids))

        def txn(conn: Connection) -> dict[int, SeqRange]:
            joined = communities.c.history_visibility == "joined"
            out: dict[int, SeqRange] = {}
            past = conn.execute(
                select(past_members.c.group_id, past_members.c.join_seq, past_members.c.leave_seq, joined)
                .join(communities, communities.c.id == past_members.c.group_id)
                .where(past_members.c.user_id == user_id, past_members.c.group_id.in_(ids))
            )
            for gid, join_seq, leave_seq, only_joined in past:
                out[int(gid)] = SeqRange(int(join_seq) if only_joined else 0, int(leave_seq))
            current = conn.execute(
                select(members.c.group_id, members.c.join_seq, joined)
                .join(communities, communities.c.id == members.c.group_id)
                .where(members.c.user_id == user_id, members.c.group_id.in_(ids))
            )
            for gid, join_seq, only_joined in current:  # a member's range wins over a stale past row
                out[int(gid)] = SeqRange(int(join_seq) if only_joined else 0, NO_END)
            return out

        return await self._db.read(txn)

    # --- roles and settings --------------------------------------------------------

    async def role_of(self, group_id: int, user_id: int) -> str | None:
        rows = await self._db.fetch(
            select(members.c.role).where(members.c.group_id == group_id, members.c.user_id == user_id)
        )
        return str(rows[0][0]) if rows else None

    async def roles(self, group_id: int) -> dict[int, str]:
        rows = await self._db.fetch(select(members.c.user_id, members.c.role).where(members.c.group_id == group_id))
        return {int(u): str(role) for u, role in map(tuple, rows)}

    async def roles_of_user(self, user_id: int) -> dict[int, str]:
        rows = await self._db.fetch(select(members.c.group_id, members.c.role).where(members.c.user_id == user_id))
        return {int(u): str(role) for u, role in map(tuple, rows)}

    async def admin_ids(self, group_id: int) -> list[int]:
        rows = await self._db.fetch(
            select(members.c.user_id).where(members.c.group_id == group_id, members.c.role.in_(("owner", "admin")))
        )
        return [int(r[0]) for r in rows]

    async def set_role(self, group_id: int, user_id: int, role: str) -> bool:
        changed = await self._db.execute(
            update(members)
            .where(members.c.group_id == group_id, members.c.user_id == user_id, members.c.role != "owner")
            .values(role=role)
        )
        return bool(changed)

    async def set_settings(self, group_id: int, *, join_policy: str, history_visibility: str) -> None:
        await self._db.execute(
            update(communities)
            .where(communities.c.id == group_id)
            .values(join_policy=join_policy, history_visibility=history_visibility)
        )

    # --- bans ----------------------------------------------------------------------

    async def ban(self, group_id: int, user_id: int, by_id: int) -> None:
        try:
            await self._db.execute(insert(group_bans).values(group_id=group_id, user_id=user_id, by_id=by_id,
                                                             created=now_ms()))
        except IntegrityError:
            pass  # banned already

    async def unban(self, group_id: int, user_id: int) -> bool:
        return bool(
            await self._db.execute(delete(group_bans).where(group_bans.c.group_id == group_id,
                                                            group_bans.c.user_id == user_id))
        )

    async def is_banned(self, group_id: int, user_id: int) -> bool:
        rows = await self._db.fetch(
            select(group_bans.c.user_id).where(group_bans.c.group_id == group_id, group_bans.c.user_id == user_id)
        )
        return bool(rows)

    async def bans(self, group_id: int) -> list[tuple[int, int, int]]:
        """``(user_id, by_id, created)`` of every ban, oldest first."""
        rows = await self._db.fetch(
            select(group_bans.c.user_id, group_bans.c.by_id, group_bans.c.created)
            .where(group_bans.c.group_id == group_id)
            .order_by(group_bans.c.created, group_bans.c.user_id)
        )
        return [(int(u), int(by), int(at)) for u, by, at in map(tuple, rows)]

    # --- join requests -------------------------------------------------------------

    async def request_join(self, group_id: int, user_id: int) -> None:
        try:
            await self._db.execute(insert(join_requests).values(group_id=group_id, user_id=user_id, created=now_ms()))
        except IntegrityError as exc:
            raise AlreadyRequested(f"{group_id}/{user_id}") from exc

    async def drop_join_request(self, group_id: int, user_id: int) -> bool:
        return bool(
            await self._db.execute(
                delete(join_requests).where(join_requests.c.group_id == group_id, join_requests.c.user_id == user_id)
            )
        )

    async def join_requests(self, group_id: int) -> list[tuple[int, int]]:
        """``(user_id, created)`` of the pending requests, oldest first."""
        rows = await self._db.fetch(
            select(join_requests.c.user_id, join_requests.c.created)
            .where(join_requests.c.group_id == group_id)
            .order_by(join_requests.c.created, join_requests.c.user_id)
        )
        return [(int(u), int(at)) for u, at in map(tuple, rows)]

    async def has_join_request(self, group_id: int, user_id: int) -> bool:
        rows = await self._db.fetch(
            select(join_requests.c.user_id).where(join_requests.c.group_id == group_id,
                                                  join_requests.c.user_id == user_id)
        )
        return bool(rows)

    # --- invites -------------------------------------------------------------------

    async def create_invite(
        self, group_id: int, by_id: int, *, ttl_ms: int, token_hash: str | None = None, invitee_id: int | None = None
    ) -> Invite:
        now = now_ms()
        values = dict(group_id=group_id, token_hash=token_hash, invitee_id=invitee_id, created_by=by_id,
                      created=now, expires=now + ttl_ms)

        def txn(conn: Connection) -> int:
            return int(conn.execute(insert(group_invites).values(**values).returning(group_invites.c.id)).scalar_one())

        iid = await self._db.write(txn)
        return Invite(id=iid, group_id=group_id, invitee_id=invitee_id, created_by=by_id, created=now,
                      expires=now + ttl_ms, revoked=False, uses=0, link=token_hash is not None)

    async def invite_by_token(self, token_hash: str) -> Invite | None:
        rows = await self._db.fetch(select(group_invites).where(group_invites.c.token_hash == token_hash))
        return _invite(rows[0]) if rows else None

    async def get_invite(self, invite_id: int) -> Invite | None:
        rows = await self._db.fetch(select(group_invites).where(group_invites.c.id == invite_id))
        return _invite(rows[0]) if rows else None

    async def personal_invite(self, group_id: int, user_id: int) -> Invite | None:
        """The newest live (unrevoked, unexpired, unused) invitation of ``user_id``."""
        rows = await self._db.fetch(
            select(group_invites)
            .where(
                group_invites.c.group_id == group_id,
                group_invites.c.invitee_id == user_id,
                group_invites.c.revoked.is_(False),
                group_invites.c.uses == 0,
                group_invites.c.expires > now_ms(),
            )
            .order_by(group_invites.c.id.desc())
            .limit(1)
        )
        return _invite(rows[0]) if rows else None

    async def invites(self, group_id: int) -> list[Invite]:
        rows = await self._db.fetch(
            select(group_invites).where(group_invites.c.group_id == group_id).order_by(group_invites.c.id.desc())
            .limit(200)
        )
        return [_invite(r) for r in rows]

    async def use_invite(self, invite_id: int) -> None:
        await self._db.execute(
            update(group_invites).where(group_invites.c.id == invite_id).values(uses=group_invites.c.uses + 1)
        )

    async def revoke_invite(self, invite_id: int) -> bool:
        return bool(
            await self._db.execute(
                update(group_invites)
                .where(group_invites.c.id == invite_id, group_invites.c.revoked.is_(False))
                .values(revoked=True)
            )
        )
