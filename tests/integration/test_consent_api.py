"""Friend requests, blocks and profile privacy under the default policies (issue #14),
over HTTP and the WebSocket, on SQLite and PostgreSQL. Every refusal is checked for
its code and for changing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from imhub.app import SERVICES
from imhub.config import Settings
from imhub.store.tables import friend_requests
from tests.integration.chatkit import User, api, connect, make_user


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


def refused(body: dict[str, Any], error: str) -> bool:
    return body["code"] == -1 and body.get("error") == error and bool(body["msg"])


async def drain(sock: Any, quiet: float = 0.4) -> list[dict[str, Any]]:
    """Every frame until the socket has been quiet for ``quiet`` seconds."""
    frames = []
    while True:
        try:
            frames.append(await sock.recv(timeout=quiet))
        except TimeoutError:
            return frames


async def friends_of(client, u: User) -> list[int]:
    return [r["id"] for r in (await api(client, "/contact/loadfriend", u))["rows"]]


async def ask(client, a: User, b: User) -> dict[str, Any]:
    body = await api(client, "/contact/addfriend", a, dstid=b.id)
    assert body["code"] == 0 and body["msg"] == "friend request sent", body
    request: dict[str, Any] = body["data"]["request"]
    assert (request["fromid"], request["toid"], request["status"]) == (a.id, b.id, "pending")
    return request


async def test_request_accept_is_live_on_both_sides(client) -> None:
    a, b = await make_user(client), await make_user(client)
    sa, sb = await connect(client, a), await connect(client, b)
    req = await ask(client, a, b)
    got = await sb.recv_until(lambda f: f["cmd"] == 41)
    assert got["event"] == "received" and got["request"]["id"] == req["id"]
    # Not friends yet: no DM, nothing in either list.
    assert await friends_of(client, a) == [] and await friends_of(client, b) == []
    await sa.send(cmd=10, dstid=b.id, media=1, content="hi", cid="early")
    assert (await sa.reply())["error"] == "not_friend"
    incoming = await api(client, "/contact/friendrequests", b)
    assert [r["id"] for r in incoming["rows"]] == [req["id"]] and incoming["rows"][0]["user"]["id"] == a.id
    assert incoming["rows"][0]["user"]["mobile"] == ""
    outgoing = await api(client, "/contact/friendrequests", a, box="outgoing")
    assert [r["id"] for r in outgoing["rows"]] == [req["id"]]
    assert (await api(client, "/contact/friendrequests", a))["total"] == 0

    accepted = await api(client, "/contact/acceptfriend", b, id=req["id"])
    assert accepted["code"] == 0 and accepted["data"]["id"] == a.id
    outcome = await sa.recv_until(lambda f: f["cmd"] == 41 and f["event"] == "accepted")
    assert outcome["request"]["status"] == "accepted"
    assert await friends_of(client, a) == [b.id] and await friends_of(client, b) == [a.id]
    await sa.send(cmd=10, dstid=b.id, media=1, content="hi", cid="now")
    assert (await sa.reply())["cmd"] == 1
    assert (await api(client, "/contact/friendrequests", b))["total"] == 0
    # Accepting again: already decided, nothing changes.
    assert refused(await api(client, "/contact/acceptfriend", b, id=req["id"]), "request_decided")


async def test_bad_requests_are_specific_and_change_nothing(client) -> None:
    a, b, c = await make_user(client), await make_user(client), await make_user(client)
    assert refused(await api(client, "/contact/addfriend", a, dstid=a.id), "self_request")
    assert refused(await api(client, "/contact/addfriend", a, dstid=987654), "unknown_user")
    req = await ask(client, a, b)
    assert refused(await api(client, "/contact/addfriend", a, dstid=b.id), "duplicate_request")
    # Only the addressee accepts or declines; only the sender cancels.
    for who in (a, c):
        assert refused(await api(client, "/contact/acceptfriend", who, id=req["id"]), "unknown_request")
        assert refused(await api(client, "/contact/declinefriend", who, id=req["id"]), "unknown_request")
    for who in (b, c):
        assert refused(await api(client, "/contact/cancelfriend", who, id=req["id"]), "unknown_request")
    assert refused(await api(client, "/contact/acceptfriend", b, id=99999), "unknown_request")
    assert refused(await api(client, "/contact/friendrequests", b, box="spam"), "bad_param")
    assert (await api(client, "/contact/cancelfriend", a, id=req["id"]))["code"] == 0
    assert refused(await api(client, "/contact/acceptfriend", b, id=req["id"]), "request_decided")
    assert refused(await api(client, "/contact/cancelfriend", a, id=req["id"]), "request_decided")
    assert await friends_of(client, a) == [] and await friends_of(client, b) == []
    assert refused(await api(client, "/contact/delfriend", a, dstid=b.id), "not_friends")


async def test_expired_request_cannot_be_accepted(client) -> None:
    a, b = await make_user(client), await make_user(client)
    req = await ask(client, a, b)
    db = client.app[SERVICES].db
    await db.execute(update(friend_requests).where(friend_requests.c.id == req["id"]).values(expires=1))
    assert (await api(client, "/contact/friendrequests", b))["total"] == 0
    assert refused(await api(client, "/contact/acceptfriend", b, id=req["id"]), "request_expired")
    assert await friends_of(client, b) == []
    # An expired request does not block asking again.
    assert (await ask(client, a, b))["id"] != req["id"]


async def test_decline_is_live_and_rerequest_is_rate_limited(client) -> None:
    a, b = await make_user(client), await make_user(client)
    sa = await connect(client, a)
    req = await ask(client, a, b)
    assert (await api(client, "/contact/declinefriend", b, id=req["id"]))["code"] == 0
    got = await sa.recv_until(lambda f: f["cmd"] == 41 and f["event"] == "declined")
    assert got["request"]["id"] == req["id"]
    r = await client.post("/contact/addfriend", data={"dstid": b.id}, headers=a.auth)
    body = await r.json()
    assert r.status == 429 and body["error"] == "rate_limited" and body["retry_after"] > 3600
    assert (await api(client, "/contact/friendrequests", b))["total"] == 0


async def test_requests_both_ways_make_friends(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await ask(client, a, b)
    body = await api(client, "/contact/addfriend", b, dstid=a.id)
    assert body["code"] == 0 and body["msg"] == "friend added" and "request" not in body["data"]
    assert await friends_of(client, a) == [b.id]
    assert (await api(client, "/contact/friendrequests", a, box="outgoing"))["total"] == 0


async def test_add_policy_anyone_and_privacy_settings(client) -> None:
    a, b = await make_user(client), await make_user(client)
    assert (await api(client, "/user/privacy", b))["data"] == {
        "addpolicy": "nobody", "findable": True, "showmobile": False}
    assert refused(await api(client, "/user/privacy", b, addpolicy="everyone"), "bad_param")
    assert refused(await api(client, "/user/privacy", b, findable="maybe"), "bad_param")
    body = await api(client, "/user/privacy", b, addpolicy="anyone", findable=0)
    assert body["data"] == {"addpolicy": "anyone", "findable": False, "showmobile": False}
    added = await api(client, "/contact/addfriend", a, dstid=b.id)
    assert added["msg"] == "friend added" and await friends_of(client, a) == [b.id]
    # Not findable by mobile: reads like an unknown number, even for a friend.
    found = await api(client, "/user/find", a, mobile=b.mobile)
    assert found == {"code": -1, "msg": "no user with this mobile number"}
    await api(client, "/user/privacy", b, findable=1)
    assert (await api(client, "/user/find", a, mobile=b.mobile))["data"]["id"] == b.id


async def test_stranger_sees_no_phone_presence_or_typing(client) -> None:
    a, stranger = await make_user(client), await make_user(client)
    await api(client, "/user/privacy", a, showmobile=1)  # even opted in: for friends only
    sa = await connect(client, a)
    ss = await connect(client, stranger)
    found = (await api(client, "/user/find", stranger, id=a.id))["data"]
    assert found["mobile"] == "" and found["online"] is False
    found = (await api(client, "/user/find", stranger, mobile=a.mobile))["data"]
    assert found["mobile"] == "" and found["online"] is False
    conv = f"p{min(a.id, stranger.id)}_{max(a.id, stranger.id)}"
    await ss.send(cmd=24, conv=conv, rid="t")
    assert (await ss.reply())["error"] == "not_friend"
    await ss.send(cmd=10, dstid=a.id, media=1, content="hello?", cid="s1")
    assert (await ss.reply())["error"] == "not_friend"
    await sa.no_frame(0.3)


async def test_block_is_invisible_and_stops_everything(client) -> None:
    a, b = await make_user(client), await make_user(client)
    req = await ask(client, a, b)
    await api(client, "/contact/acceptfriend", b, id=req["id"])
    sa, sb = await connect(client, a), await connect(client, b)
    assert (await api(client, "/contact/block", a, dstid=b.id))["code"] == 0
    assert [u["id"] for u in (await api(client, "/contact/loadblocks", a))["rows"]] == [b.id]
    # b's messages fail as to any non-friend; typing too.
    await sb.send(cmd=10, dstid=a.id, media=1, content="still there?", cid="b1")
    assert (await sb.reply())["error"] == "not_friend"
    conv = f"p{min(a.id, b.id)}_{max(a.id, b.id)}"
    await sb.send(cmd=24, conv=conv, rid="t")
    assert (await sb.reply())["error"] == "not_friend"
    # b's new request looks sent but never reaches a.
    hidden = await ask(client, b, a)
    assert (await api(client, "/contact/friendrequests", a))["total"] == 0
    assert refused(await api(client, "/contact/acceptfriend", a, id=hidden["id"]), "unknown_request")
    # b cannot find a by mobile; a sees no profile details of b.
    assert (await api(client, "/user/find", b, mobile=a.mobile))["msg"] == "no user with this mobile number"
    assert (await api(client, "/user/find", a, id=b.id))["data"]["online"] is False
    # Nothing of b's reached a after the block: no message, typing or request.
    assert [f for f in await drain(sa) if f["cmd"] in (10, 34, 41)] == []
    # a cannot ask b while blocking them; unblocking does not restore the friendship.
    assert refused(await api(client, "/contact/addfriend", a, dstid=b.id), "you_blocked")
    assert (await api(client, "/contact/unblock", a, dstid=b.id))["code"] == 0
    assert refused(await api(client, "/contact/unblock", a, dstid=b.id), "not_blocked")
    assert refused(await api(client, "/contact/block", a, dstid=a.id), "self_request")
    assert await friends_of(client, a) == []


async def test_a_block_stops_a_pair_already_messaging(client) -> None:
    """The chat path queues a message at once when the friendship is cached (no task):
    the block must evict that answer, so the next message is refused."""
    a, b = await make_user(client), await make_user(client)
    req = await ask(client, a, b)
    await api(client, "/contact/acceptfriend", b, id=req["id"])
    sa, sb = await connect(client, a), await connect(client, b)
    for i in range(3):
        await sb.send(cmd=10, dstid=a.id, media=1, content=f"m{i}", cid=f"before{i}")
        assert (await sb.reply())["cid"] == f"before{i}"
    assert [f["content"] for f in await drain(sa) if f["cmd"] == 10] == ["m0", "m1", "m2"]
    assert (await api(client, "/contact/block", a, dstid=b.id))["code"] == 0
    await sb.send(cmd=10, dstid=a.id, media=1, content="after", cid="after")
    assert (await sb.reply())["error"] == "not_friend"
    await sa.send(cmd=10, dstid=b.id, media=1, content="mine", cid="mine")
    assert (await sa.reply())["error"] == "not_friend"
    assert [f for f in await drain(sa) if f["cmd"] == 10] == []


async def test_friend_requests_are_rate_limited_per_user(client) -> None:
    svc = client.app[SERVICES]
    a = await make_user(client)
    others = [await make_user(client) for _ in range(3)]
    svc.consent.request_limiter_user.limit = 2
    for o in others[:2]:
        await ask(client, a, o)
    r = await client.post("/contact/addfriend", data={"dstid": others[2].id}, headers=a.auth)
    body = await r.json()
    assert r.status == 429 and body["error"] == "rate_limited" and body["retry_after"] > 0
    assert (await api(client, "/contact/friendrequests", others[2]))["total"] == 0


async def test_open_policy_is_the_seed_behaviour(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from imhub.app import build_app
    from imhub.store.migrate import migrate

    settings = Settings(data_dir=tmp_path / "open", friend_policy="open")
    await migrate(settings.effective_database_url)
    async with TestClient(TestServer(build_app(settings))) as c:
        a, b = await make_user(c), await make_user(c)
        body = await api(c, "/contact/addfriend", a, dstid=b.id)
        assert body["code"] == 0 and body["msg"] == "friend added" and body["data"]["id"] == b.id
        assert await friends_of(c, b) == [a.id]
