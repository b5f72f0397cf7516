"""The asyncio client (imhub/client.py) against an in-process server: login, send with
acks, receive each message once, catch up after being offline and after a dropped
connection, idempotent resends, and a refused token."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from imhub.client import Client, LoggedOut, Refusal, backoff_delay
from tests.integration.chatkit import befriend, make_group, make_user


def base(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_login_send_and_receive_once(client: TestClient) -> None:
    alice, bob = await make_user(client), await make_user(client)
    await befriend(client, alice, bob)
    a = await Client.login(base(client), alice.mobile, "secret12")
    assert a.user_id == alice.id
    async with a, Client(base(client), bob.id, bob.token) as b:
        ack = await a.send(bob.id, "hello")
        pair = f"p{min(alice.id, bob.id)}_{max(alice.id, bob.id)}"
        assert ack["cmd"] == 1 and ack["seq"] == 1 and ack["conv"] == pair
        got = await b.next_message(5)
        assert (got["userid"], got["content"], got["seq"]) == (alice.id, "hello", 1)
        # A second send with the same cid is the same message (stored once).
        first = await a.send(bob.id, "once", cid="fixed-cid")
        again = await a.send(bob.id, "once", cid="fixed-cid")
        assert again["id"] == first["id"] and again.get("dup") is True
        got = await b.next_message(5)
        assert got["content"] == "once"
        with pytest.raises(asyncio.TimeoutError):
            await b.next_message(0.3)
        # HTTP with the same token.
        me = await b.api("/user/me")
        assert me["id"] == bob.id


async def test_catch_up_after_offline_and_after_a_dropped_connection(client: TestClient) -> None:
    alice, bob = await make_user(client), await make_user(client)
    await befriend(client, alice, bob)
    async with Client(base(client), alice.id, alice.token) as a:
        # Bob has never connected: the first sync brings what was never delivered.
        await a.send(bob.id, "while you were away 1")
        await a.send(bob.id, "while you were away 2")
        b = Client(base(client), bob.id, bob.token, backoff_base=0.05)
        async with b:
            got = [await b.next_message(5), await b.next_message(5)]
            assert [m["content"] for m in got] == ["while you were away 1", "while you were away 2"]
            # The network fails; a message sent meanwhile comes with the reconnect's sync.
            await b.drop_connection()
            await a.send(bob.id, "during the outage")
            got3 = await b.next_message(10)
            assert got3["content"] == "during the outage" and got3["seq"] == 3
            assert b.connects >= 2
            # Live again after the reconnect, and each message once.
            await a.send(bob.id, "live again")
            assert (await b.next_message(5))["content"] == "live again"
            with pytest.raises(asyncio.TimeoutError):
                await b.next_message(0.3)


async def test_send_waits_for_the_reconnect_and_is_stored_once(client: TestClient) -> None:
    alice, bob = await make_user(client), await make_user(client)
    owner = await make_user(client)
    gid = await make_group(client, owner, alice, bob, joinpolicy="open")
    async with Client(base(client), alice.id, alice.token, backoff_base=0.05) as a, Client(
        base(client), bob.id, bob.token
    ) as b:
        await a.drop_connection()
        ack = await a.send(gid, "after reconnect", group=True)
        assert ack["conv"] == f"g{gid}"
        msgs = []
        while not any(m.get("content") == "after reconnect" for m in msgs):
            msgs.append(await b.next_message(5))
        assert [m["id"] for m in msgs if m.get("content") == "after reconnect"] == [ack["id"]]


async def test_refusals_and_a_bad_token(client: TestClient) -> None:
    alice, stranger = await make_user(client), await make_user(client)
    async with Client(base(client), alice.id, alice.token) as a:
        with pytest.raises(Refusal) as err:
            await a.send(stranger.id, "not a friend")
        assert err.value.error == "not_friend" and err.value.code == 4030
    with pytest.raises(LoggedOut):
        await Client(base(client), alice.id, "not-a-token").start()
    with pytest.raises(Refusal):
        await Client.login(base(client), alice.mobile, "wrong-password")


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    assert backoff_delay(0, rnd=lambda: 0.0) == 0.25
    assert backoff_delay(0, rnd=lambda: 1.0) == 0.5
    assert backoff_delay(3, rnd=lambda: 0.0) == 2.0
    assert backoff_delay(50, cap=30, rnd=lambda: 1.0) == 30
