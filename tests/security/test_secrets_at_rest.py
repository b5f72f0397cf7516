"""What a stolen database gives away (OWASP A02 cryptographic failures): passwords only
as argon2id hashes with a per-user salt, login tokens only as SHA-256 digests — read
straight from the tables after register, login and a password change."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY

from imhub.config import Settings
from imhub.store.engine import create_engine
from imhub.store.tables import tokens, users
from tests.integration.chatkit import api, make_user


async def _rows(settings: Settings) -> tuple[list[sa.Row], list[sa.Row]]:
    engine = create_engine(settings.effective_database_url)
    try:
        async with engine.connect() as conn:
            u = (await conn.execute(sa.select(users.c.id, users.c.passwd))).all()
            t = (await conn.execute(sa.select(tokens.c.token_hash, tokens.c.user_id))).all()
        return list(u), list(t)
    finally:
        await engine.dispose()


async def test_passwords_are_argon2id_and_tokens_sha256(client: TestClient, settings: Settings) -> None:
    a, b = await make_user(client), await make_user(client)  # same password "secret12"
    user_rows, token_rows = await _rows(settings)
    by_id = {r.id: r.passwd for r in user_rows}
    for u in (a, b):
        encoded = by_id[u.id]
        assert encoded.startswith("$argon2id$v=19$"), encoded
        assert "secret12" not in encoded
        assert PasswordHasher().verify(encoded, "secret12")
    assert by_id[a.id] != by_id[b.id], "same password, different salts"
    stored = {r.token_hash: r.user_id for r in token_rows}
    for u in (a, b):
        assert u.token not in stored, "the token itself is never stored"
        assert stored[hashlib.sha256(u.token.encode()).hexdigest()] == u.id
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in stored)

    # A password change re-hashes and revokes: only the new token's digest remains.
    body = await api(client, "/user/password", a, oldpasswd="secret12", newpasswd="another12")
    assert body["code"] == 0, body
    new_token = body["data"]["token"]
    user_rows, token_rows = await _rows(settings)
    assert {r.id: r.passwd for r in user_rows}[a.id].startswith("$argon2id$")
    mine = {r.token_hash for r in token_rows if r.user_id == a.id}
    assert mine == {hashlib.sha256(new_token.encode()).hexdigest()}


def test_production_hasher_is_argon2id_at_rfc9106_cost() -> None:
    """The in-process tests use a cheap argon2id (tests/conftest.py); the server's own
    hasher is argon2-cffi's default: argon2id, RFC 9106 low-memory profile (64 MiB, t=3).
    The dummy hash (verified against for unknown mobiles, so a miss costs as much as a
    hit: no account enumeration by timing) was made by that hasher at import time."""
    from imhub.services import accounts

    params = extract_parameters(accounts._DUMMY_HASH)
    assert params.type is Type.ID
    assert (params.memory_cost, params.time_cost, params.parallelism) == (
        RFC_9106_LOW_MEMORY.memory_cost, RFC_9106_LOW_MEMORY.time_cost, RFC_9106_LOW_MEMORY.parallelism)
