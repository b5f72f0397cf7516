"""IDOR (OWASP A01 broken access control): a logged-in user tries to read, write or
change what belongs to others — another pair's conversation, a group it is not in (or
does not own), another user's profile or contacts — by passing their ids, over HTTP and
over the WebSocket. Every attempt is refused and nothing of theirs leaks or changes.

The caller is always the session (Bearer token here); ids in the request only select
*what*, never *who* (README "HTTP API"; docs/protocol.md "Error codes")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.chatkit import Socket, User, api, befriend, connect, is_msg, make_group, make_user

SECRET = "secret-between-bob-and-carol"


@dataclass
class World:
    mallory: User  # the attacker: a normal account, friends with nobody involved
    bob: User
    carol: User
    gid: int  # bob's group, carol is a member, mallory is not
    own_gid: int  # mallory's own group with bob in it (mallory is not the owner of gid)
    conv: str  # bob <-> carol
    msg_id: int  # bob's message in conv


@pytest.fixture
async def world(client: TestClient) -> World:
    mallory, bob, carol = await make_user(client, "mallory"), await make_user(client, "bob"), await make_user(client)
    await befriend(client, bob, carol)
    gid = await make_group(client, bob, carol, name="bobs")
    own_gid = await make_group(client, carol, mallory, bob, name="carols")
    bs = await connect(client, bob)
    await bs.send(cmd=10, dstid=carol.id, media=1, content=SECRET, cid="s1")
    ack = await bs.reply()
    assert ack["cmd"] == 1, ack
    await bs.send(cmd=11, dstid=gid, media=1, content=SECRET, cid="s2")
    assert (await bs.reply())["cmd"] == 1
    await bs.close()
    conv = f"p{min(bob.id, carol.id)}_{max(bob.id, carol.id)}"
    return World(mallory, bob, carol, gid, own_gid, conv, int(ack["id"]))


def refused(body: dict[str, Any]) -> bool:
    return body.get("code") == -1


async def post(client: TestClient, path: str, user: User, **data: Any) -> tuple[int, dict[str, Any]]:
    r = await client.post(path, data={k: str(v) for k, v in data.items()}, headers=user.auth)
    text = await r.text()
    assert SECRET not in text, f"{path} leaked another conversation"
    body: dict[str, Any] = await r.json()
    return r.status, body


# --- HTTP --------------------------------------------------------------------------------


async def test_http_message_routes_refuse_other_conversations(client: TestClient, world: World) -> None:
    w, m = world, world.mallory
    for conv in (w.conv, f"g{w.gid}"):
        _, body = await post(client, "/message/history", m, conv=conv)
        assert refused(body) and body["error"] == "not_in_conversation", body
        _, body = await post(client, "/message/read", m, conv=conv, seq=1)
        assert refused(body) and body["error"] == "not_in_conversation", body
        _, body = await post(client, "/message/receipts", m, conv=conv)
        assert refused(body) and body["error"] == "not_in_conversation", body
        _, body = await post(client, "/message/sync", m, after=f"{conv}:0")
        assert body["code"] == 0 and body["rows"] == [] and conv in body["denied"], body
    _, body = await post(client, "/message/search", m, q="secret")
    assert body["code"] == 0 and body["rows"] == [], body
    _, body = await post(client, "/message/recall", m, id=w.msg_id)
    assert refused(body) and body["error"] == "not_in_conversation", body  # not even "exists"
    # and the message is still there, not recalled, for its owners
    body = await api(client, "/message/history", w.carol, conv=w.conv)
    assert [(r["content"], r.get("recalled", False)) for r in body["rows"]] == [(SECRET, False)]


async def test_http_ids_of_someone_else_are_forbidden(client: TestClient, world: World) -> None:
    """Every route taking ``userid``/``ownerid`` refuses one that is not the caller (403),
    so Mallory cannot act as Bob: befriend, join, leave, load his contacts, or edit him."""
    w, m, bob = world, world.mallory, world.bob
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("/contact/addfriend", {"userid": bob.id, "dstid": m.id}),
        ("/contact/delfriend", {"userid": bob.id, "dstid": w.carol.id}),
        ("/contact/loadfriend", {"userid": bob.id}),
        ("/contact/loadcommunity", {"userid": bob.id}),
        ("/contact/joincommunity", {"userid": bob.id, "dstid": w.own_gid}),
        ("/contact/leavecommunity", {"userid": bob.id, "dstid": w.gid}),
        ("/contact/members", {"userid": bob.id, "dstid": w.gid}),
        ("/contact/createcommunity", {"ownerid": bob.id, "name": "fake"}),
        ("/contact/renamecommunity", {"userid": bob.id, "dstid": w.gid, "name": "pwned"}),
        ("/contact/removemember", {"userid": bob.id, "dstid": w.gid, "memberid": w.carol.id}),
        ("/user/update", {"userid": bob.id, "nickname": "pwned"}),
        ("/user/me", {"userid": bob.id}),
    ]
    for path, data in attempts:
        status, body = await post(client, path, m, **data)
        assert status == 403 and refused(body), (path, status, body)
    # Nothing changed for Bob.
    _, me = await post(client, "/user/me", bob)
    assert me["data"]["nickname"] == "bob"
    _, friends = await post(client, "/contact/loadfriend", w.carol)
    assert bob.id in [u["id"] for u in friends["rows"]]
    _, groups = await post(client, "/contact/loadcommunity", bob)
    assert {g["name"] for g in groups["rows"]} == {"bobs", "carols"}


async def test_http_group_rules_for_non_members_and_non_owners(client: TestClient, world: World) -> None:
    w, m = world, world.mallory
    _, body = await post(client, "/contact/members", m, dstid=w.gid)  # not a member
    assert refused(body), body
    # a member who is not the owner (Mallory in Carol's group) cannot rename or remove
    _, body = await post(client, "/contact/renamecommunity", m, dstid=w.own_gid, name="pwned")
    assert refused(body), body
    _, body = await post(client, "/contact/removemember", m, dstid=w.own_gid, memberid=w.bob.id)
    assert refused(body), body
    _, members = await post(client, "/contact/members", w.carol, dstid=w.own_gid)
    assert w.bob.id in [u["id"] for u in members["rows"]]
    # a profile seen by a stranger has no phone number and no token
    _, found = await post(client, "/user/find", m, id=w.bob.id)
    assert found["data"]["mobile"] == "" and found["data"]["token"] == ""


# --- WebSocket ---------------------------------------------------------------------------


async def test_ws_refuses_other_conversations(client: TestClient, world: World) -> None:
    w = world
    ms: Socket = await connect(client, w.mallory)
    try:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"cmd": 10, "dstid": w.bob.id, "media": 1, "content": "hi", "cid": "x1"}, "not_friend"),
            ({"cmd": 11, "dstid": w.gid, "media": 1, "content": "hi", "cid": "x2"}, "not_member"),
            ({"cmd": 10, "dstid": w.carol.id, "userid": w.bob.id, "media": 1, "content": "hi", "cid": "x3"},
             "forged_userid"),
            ({"cmd": 22, "rid": "h", "conv": w.conv}, "not_in_conversation"),
            ({"cmd": 22, "rid": "h", "conv": f"g{w.gid}"}, "not_in_conversation"),
            ({"cmd": 23, "rid": "r", "conv": w.conv, "seq": 1}, "not_in_conversation"),
            ({"cmd": 24, "rid": "t", "conv": w.conv}, "not_in_conversation"),
            ({"cmd": 26, "rid": "c", "conv": f"g{w.gid}"}, "not_in_conversation"),
            ({"cmd": 25, "rid": "x", "id": w.msg_id}, "not_in_conversation"),
        ]
        for frame, error in cases:
            await ms.send(**frame)
            reply = await ms.recv_until(lambda f: f.get("cmd") in (1, 2, 30, 32, 38))
            assert reply["cmd"] == 2 and reply["error"] == error, (frame, reply)
        await ms.send(cmd=20, rid="s", after={w.conv: 0, f"g{w.gid}": 0})
        page = await ms.recv_until(lambda f: f.get("cmd") == 30)
        assert page["msgs"] == [] and set(page["denied"]) == {w.conv, f"g{w.gid}"}, page
        await ms.send(cmd=27, rid="q", q="secret")
        hits = await ms.recv_until(lambda f: f.get("cmd") == 39)
        assert hits["hits"] == []
        assert not any(SECRET in str(f) for f in ms.frames)
        # Carol still has the message, not recalled.
        cs = await connect(client, w.carol)
        await cs.send(cmd=22, rid="h", conv=w.conv)
        hist = await cs.recv_until(lambda f: f.get("cmd") == 32)
        assert [m["content"] for m in hist["msgs"] if is_msg(m)] == [SECRET]
        await cs.close()
    finally:
        await ms.close()


async def test_ws_cannot_connect_as_someone_else(client: TestClient, world: World) -> None:
    from aiohttp import WSServerHandshakeError

    with pytest.raises(WSServerHandshakeError) as e:
        await client.ws_connect("/chat", params={"id": str(world.bob.id), "token": world.mallory.token})
    assert e.value.status == 403
