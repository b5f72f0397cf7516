"""The login limits under attack (issue #16 items 2 and 13): concurrent guesses, a
stranger locking the owner out, users behind one NAT."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

import imhub.services.accounts as accounts

LIMIT = 10  # Settings.login_max_attempts default
_mobiles = itertools.count(13600000000)


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the password verifications; each takes a moment, as argon2 does."""
    calls: list[str] = []
    real = accounts.verify_password

    async def counting(encoded: str, password: str) -> bool:
        calls.append(password)
        await asyncio.sleep(0.05)
        return await real(encoded, password)

    monkeypatch.setattr(accounts, "verify_password", counting)
    return calls


async def register(client: TestClient) -> str:
    mobile = str(next(_mobiles))
    body = await (await client.post("/user/register", data={"mobile": mobile, "passwd": "secret12"})).json()
    assert body["code"] == 0, body
    return mobile


async def login(session: Any, mobile: str, passwd: str) -> tuple[int, dict[str, Any]]:
    r = await session.post("/user/login", data={"mobile": mobile, "passwd": passwd})
    return r.status, await r.json()


async def test_concurrent_wrong_passwords_are_not_all_verified(client: TestClient, verified: list[str]) -> None:
    mobile = await register(client)
    results = await asyncio.gather(*(login(client, mobile, f"guess{i:03}") for i in range(60)))
    assert len(verified) <= LIMIT, f"{len(verified)} of 60 concurrent guesses were verified"
    statuses = [status for status, _ in results]
    assert statuses.count(429) >= 60 - LIMIT
    assert all(body["code"] == -1 for _, body in results)


async def test_verifications_in_flight_are_capped(client: TestClient, verified: list[str]) -> None:
    mobile = await register(client)
    results = await asyncio.gather(*(login(client, mobile, "wrong!") for _ in range(5)))
    refused = [body for status, body in results if status == 429]
    assert len(verified) == 2 and len(refused) == 3  # login_in_flight_per_account
    assert all(body["retry_after"] >= 1 for body in refused)


async def test_known_device_is_not_locked_out_by_a_stranger(client: TestClient) -> None:
    mobile = await register(client)
    status, _ = await login(client, mobile, "secret12")  # the owner's browser: now a known device
    assert status == 200
    async with aiohttp.ClientSession(str(client.make_url("/"))) as stranger:
        for _ in range(LIMIT):
            assert (await login(stranger, mobile, "wrong!"))[1]["msg"] == "wrong mobile or password"
        status, body = await login(stranger, mobile, "secret12")
        assert status == 429, body  # the account is locked for unknown devices...
    status, body = await login(client, mobile, "secret12")
    assert status == 200 and body["code"] == 0, body  # ...but not for the owner's


async def test_known_device_has_its_own_limit(client: TestClient) -> None:
    mobile = await register(client)
    assert (await login(client, mobile, "secret12"))[0] == 200
    for _ in range(LIMIT):
        assert (await login(client, mobile, "wrong!"))[0] == 200  # code -1, wrong password
    # The device has used up its own allowance; it is a stranger now, and the account
    # limit (untouched so far) still lets it try.
    status, body = await login(client, mobile, "secret12")
    assert status == 200 and body["code"] == 0, body


async def test_device_cookie_is_bound_to_its_account(client: TestClient) -> None:
    first, second = await register(client), await register(client)
    assert (await login(client, first, "secret12"))[0] == 200  # a device known for `first` only
    for _ in range(LIMIT):
        await login(client, second, "wrong!")
    status, _ = await login(client, second, "secret12")
    assert status == 429


async def test_address_limit_counts_distinct_accounts(client: TestClient) -> None:
    """Behind one NAT: a user fumbling their own password does not block a neighbour."""
    fumbler, neighbour = await register(client), await register(client)
    async with aiohttp.ClientSession(str(client.make_url("/"))) as one, \
            aiohttp.ClientSession(str(client.make_url("/"))) as two:
        for _ in range(LIMIT):
            await login(one, fumbler, "wrong!")
        status, body = await login(two, neighbour, "secret12")
        assert status == 200 and body["code"] == 0, body
        # A spray over many accounts from one address is stopped.
        sprayed = [str(next(_mobiles)) for _ in range(LIMIT + 2)]
        statuses = [(await login(two, mobile, "Summer2026"))[0] for mobile in sprayed]
        assert 429 in statuses and statuses.index(429) <= LIMIT
