"""Fast seeding for benchmarks: many users, one token each, friend pairs and groups,
written with SQLAlchemy Core bulk inserts (one transaction, executemany batches).

Every seeded user shares one password, hashed once with argon2id; tokens are random
and only their SHA-256 (:func:`imhub.store.users.token_hash`) is stored, exactly as a
login would. The result is a JSON-lines file the load generator reads:

    {"id": 1, "token": "...", "mobile": "19900000001"}     one line per user
    {"pair": [1, 2]}                                         one line per friend pair
    {"group": 7, "owner": 1, "members": [1, 2, ...]}         one line per group
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from argon2 import PasswordHasher
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from imhub.clock import now_ms
from imhub.store.tables import communities, contacts, members, tokens, users
from imhub.store.users import token_hash

DEFAULT_PREFIX = "199"
DEFAULT_PASSWORD = "bench-password"  # noqa: S105 - shared by seeded bench users only
MOBILE_DIGITS = 11
CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class SeedUser:
    id: int
    token: str
    mobile: str


@dataclass(slots=True)
class SeedGroup:
    id: int
    owner: int
    members: list[int]


@dataclass(slots=True)
class Seeded:
    users: list[SeedUser] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    groups: list[SeedGroup] = field(default_factory=list)

    def write(self, path: Path) -> None:
        with path.open("wb") as f:
            for u in self.users:
                f.write(orjson.dumps({"id": u.id, "token": u.token, "mobile": u.mobile}) + b"\n")
            for a, b in self.pairs:
                f.write(orjson.dumps({"pair": [a, b]}) + b"\n")
            for g in self.groups:
                f.write(orjson.dumps({"group": g.id, "owner": g.owner, "members": g.members}) + b"\n")

    @classmethod
    def read(cls, path: Path) -> Seeded:
        out = cls()
        with path.open("rb") as f:
            for line in f:
                if not line.strip():
                    continue
                obj = orjson.loads(line)
                if "pair" in obj:
                    a, b = obj["pair"]
                    out.pairs.append((int(a), int(b)))
                elif "group" in obj:
                    out.groups.append(SeedGroup(int(obj["group"]), int(obj["owner"]), [int(m) for m in obj["members"]]))
                else:
                    out.users.append(SeedUser(int(obj["id"]), str(obj["token"]), str(obj["mobile"])))
        return out


def _chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


class BulkSeeder:
    """Bulk writes straight into the stores' tables (admin/bench only: no validation
    beyond what the schema enforces)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def next_mobile_index(self, prefix: str) -> int:
        """The first free index for mobiles ``prefix + zero-padded index``."""
        async with self._engine.connect() as conn:
            top = (
                await conn.execute(select(func.max(users.c.mobile)).where(users.c.mobile.like(f"{prefix}%")))
            ).scalar()
        if not top or not str(top)[len(prefix) :].isdigit():
            return 1
        return int(str(top)[len(prefix) :]) + 1

    async def add_users(self, mobiles: Sequence[str], passwd_hash: str) -> list[int]:
        """Insert users; returns their ids in the order of ``mobiles``.

        Plain executemany (no RETURNING: on SQLite an ordered RETURNING degrades to a
        statement per row), then one range query maps the mobiles back to ids.
        """
        now = now_ms()
        by_mobile: dict[str, int] = {}
        async with self._engine.begin() as conn:
            for chunk in _chunks(mobiles):
                rows = [
                    {"mobile": m, "passwd": passwd_hash, "nickname": m[-6:], "createat": now, "last_seen": 0,
                     "banned": False}
                    for m in chunk
                ]
                await conn.execute(insert(users), rows)
                wanted = set(chunk)
                result = await conn.execute(
                    select(users.c.id, users.c.mobile).where(users.c.mobile.between(min(chunk), max(chunk)))
                )
                by_mobile.update({r.mobile: int(r.id) for r in result if r.mobile in wanted})
        return [by_mobile[m] for m in mobiles]

    async def add_tokens(self, user_tokens: Sequence[tuple[int, str]], ttl_seconds: int) -> None:
        now = now_ms()
        expires = now + ttl_seconds * 1000
        async with self._engine.begin() as conn:
            for chunk in _chunks(user_tokens):
                await conn.execute(
                    insert(tokens),
                    [{"token_hash": token_hash(t), "user_id": u, "created": now, "expires": expires} for u, t in chunk],
                )

    async def add_friend_pairs(self, pairs: Sequence[tuple[int, int]]) -> None:
        now = now_ms()
        rows: list[dict[str, int]] = []
        for a, b in pairs:
            rows.append({"owner_id": a, "dst_id": b, "created": now})
            rows.append({"owner_id": b, "dst_id": a, "created": now})
        async with self._engine.begin() as conn:
            for chunk in _chunks(rows):
                await conn.execute(insert(contacts), list(chunk))

    async def add_groups(self, member_lists: Sequence[Sequence[int]], name: str = "bench") -> list[SeedGroup]:
        """One group per member list; the first member owns it (and is a member)."""
        now = now_ms()
        stmt = insert(communities).returning(communities.c.id, sort_by_parameter_order=True)
        out: list[SeedGroup] = []
        async with self._engine.begin() as conn:
            result = await conn.execute(
                stmt,
                [{"name": f"{name}-{i}", "ownerid": ms[0], "icon": "", "cate": 0, "memo": "", "createat": now}
                 for i, ms in enumerate(member_lists)],
            )
            gids = [int(r.id) for r in result]
            rows = [{"group_id": gid, "user_id": uid, "joined": now + j, "role": "owner" if j == 0 else "member"}
                    for gid, ms in zip(gids, member_lists, strict=True) for j, uid in enumerate(ms)]
            for chunk in _chunks(rows):
                await conn.execute(insert(members), list(chunk))
        for gid, ms in zip(gids, member_lists, strict=True):
            out.append(SeedGroup(gid, ms[0], list(ms)))
        return out


async def seed(
    engine: AsyncEngine,
    count: int,
    *,
    password: str = DEFAULT_PASSWORD,
    prefix: str = DEFAULT_PREFIX,
    pairs: bool = False,
    group_size: int = 0,
    groups: int | None = None,
    token_ttl_seconds: int = 30 * 24 * 3600,
) -> Seeded:
    """Create ``count`` users (+ tokens), optionally friend pairs (user 2k with 2k+1)
    and groups of ``group_size`` consecutive users (``groups`` of them; default as
    many as fit)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if len(prefix) >= MOBILE_DIGITS:
        raise ValueError("mobile prefix too long")
    width = MOBILE_DIGITS - len(prefix)
    seeder = BulkSeeder(engine)
    start = await seeder.next_mobile_index(prefix)
    if start + count > 10**width:
        raise ValueError(f"not enough mobiles left under prefix {prefix!r}")
    mobiles = [f"{prefix}{i:0{width}d}" for i in range(start, start + count)]
    passwd_hash = PasswordHasher().hash(password)  # once, shared by every seeded user
    ids = await seeder.add_users(mobiles, passwd_hash)
    toks = [secrets.token_urlsafe(32) for _ in ids]
    await seeder.add_tokens(list(zip(ids, toks, strict=True)), token_ttl_seconds)
    out = Seeded(users=[SeedUser(i, t, m) for i, t, m in zip(ids, toks, mobiles, strict=True)])
    if pairs:
        out.pairs = [(ids[k], ids[k + 1]) for k in range(0, count - 1, 2)]
        await seeder.add_friend_pairs(out.pairs)
    if group_size:
        if group_size > count:
            raise ValueError("group size exceeds the number of users")
        n_groups = count // group_size if groups is None else groups
        if n_groups * group_size > count:
            raise ValueError("not enough users for that many groups")
        lists = [ids[g * group_size : (g + 1) * group_size] for g in range(n_groups)]
        if lists:
            out.groups = await seeder.add_groups(lists)
    return out
