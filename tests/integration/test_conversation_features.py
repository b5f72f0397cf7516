"""Receipts, unread counts, typing, presence, recall, history and search over real
WebSocket clients (issue: conversation features)."""

from __future__ import annotations

import pytest

from imhub.app import SERVICES
from tests.integration.chatkit import befriend, connect, is_msg, make_group, make_user


def conv_of(a, b) -> str:
    return f"p{min(a.id, b.id)}_{max(a.id, b.id)}"


async def send_texts(sock, dstid: int, n: int, cmd: int = 10, prefix: str = "m") -> list[dict]:
    acks = []
    for i in range(n):
        await sock.send(cmd=cmd, dstid=dstid, media=1, content=f"{prefix}{i}", cid=f"{prefix}{i}-{dstid}")
        ack = await sock.reply()
        assert ack["cmd"] == 1, ack
        acks.append(ack)
    return acks


async def test_read_receipt_reaches_sender_and_other_devices_and_unread(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    await send_texts(sa, b.id, 3)
    b_phone, b_laptop = await connect(client, b, autosync=0), await connect(client, b, autosync=0)
    conv = conv_of(a, b)
    await sa.send(cmd=21, rid="mine")
    (mine,) = (await sa.recv_until(lambda f: f.get("rid") == "mine"))["convs"]
    assert mine["unread"] == 0 and mine["read_seq"] == 3  # one's own messages are never unread
    await b_phone.send(cmd=21, rid="c")
    (c,) = (await b_phone.recv_until(lambda f: f["cmd"] == 31))["convs"]
    assert c["unread"] == 3 and c["read_seq"] == 0
    await b_phone.send(cmd=23, conv=conv, seq=2)
    to_sender = await sa.recv_until(lambda f: f["cmd"] == 33 and "read_seq" in f)
    assert to_sender == {"cmd": 33, "conv": conv, "userid": b.id, "delivered_seq": 2, "read_seq": 2}
    on_laptop = await b_laptop.recv_until(lambda f: f["cmd"] == 33)
    assert on_laptop["read_seq"] == 2
    await b_laptop.send(cmd=21)
    (c,) = (await b_laptop.recv_until(lambda f: f["cmd"] == 31))["convs"]
    assert c["unread"] == 1 and c["read_seq"] == 2
    # Beyond the last seq: refused, nothing changes.
    await b_phone.send(cmd=23, conv=conv, seq=99)
    err = await b_phone.recv_until(lambda f: f["cmd"] == 2)
    assert err["error"] == "seq_beyond_end" and err["code"] == 4220
    await b_phone.send(cmd=23, conv=f"p{a.id}_999999", seq=1)
    assert (await b_phone.recv_until(lambda f: f["cmd"] == 2))["error"] == "not_in_conversation"


async def test_group_read_by_counts(client) -> None:
    owner, m1, m2 = await make_user(client), await make_user(client), await make_user(client)
    gid = await make_group(client, owner, m1, m2)
    so = await connect(client, owner)
    acks = await send_texts(so, gid, 2, cmd=11)
    last = acks[-1]["seq"]
    s1 = await connect(client, m1, autosync=0)
    await s1.send(cmd=23, conv=f"g{gid}", seq=last)
    live = await so.recv_until(lambda f: f["cmd"] == 33)
    assert live["userid"] == m1.id and live["read_seq"] == last
    await so.send(cmd=26, rid="r", conv=f"g{gid}")
    lst = await so.recv_until(lambda f: f["cmd"] == 38)
    reads = {c["userid"]: c["read_seq"] for c in lst["cursors"]}
    assert reads[m1.id] == last and reads[m2.id] < acks[0]["seq"]
    assert sum(1 for u, r in reads.items() if u != owner.id and r >= last) == 1  # "read by 1"


async def test_typing_is_forwarded_and_throttled(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa, sb = await connect(client, a), await connect(client, b)
    await sa.send(cmd=24, conv=conv_of(a, b))
    t = await sb.recv_until(lambda f: f["cmd"] == 34)
    assert t["userid"] == a.id and t["conv"] == conv_of(a, b) and t["ttl"] > 0
    await sa.send(cmd=24, conv=conv_of(a, b))  # within the throttle window: dropped
    await sb.no_frame(0.5)


async def test_presence_live_and_online_flag(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    sb1 = await connect(client, b)
    ev = await sa.recv_until(lambda f: f["cmd"] == 35)
    assert ev["userid"] == b.id and ev["online"] is True
    sb2 = await connect(client, b)
    await sb1.close()
    await sa.no_frame(0.3)  # still online through the second connection
    r = await client.post("/contact/loadfriend", data={"userid": a.id}, headers=a.auth)
    rows = (await r.json())["rows"]
    assert [u["online"] for u in rows if u["id"] == b.id] == [True]
    await sb2.close()
    ev = await sa.recv_until(lambda f: f["cmd"] == 35)
    assert ev["online"] is False and ev["last_seen"] > 0


async def test_recall_live_synced_and_erased(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa, sb = await connect(client, a), await connect(client, b)
    (ack,) = await send_texts(sa, b.id, 1, prefix="secret")
    await sb.recv_until(is_msg)
    # Someone else's message: refused.
    await sb.send(cmd=25, id=ack["id"])
    assert (await sb.recv_until(lambda f: f["cmd"] == 2))["error"] == "not_yours"
    await sa.send(cmd=25, rid="rc", id=ack["id"])
    mine = await sa.recv_until(lambda f: f["cmd"] == 36)
    assert mine["id"] == ack["id"] and mine["rid"] == "rc"
    theirs = await sb.recv_until(lambda f: f["cmd"] == 36)
    assert theirs["id"] == ack["id"] and theirs["seq"] == ack["seq"]
    late = await connect(client, b, autosync=0)
    await late.send(cmd=20, after={ack["conv"]: 0})
    (m,) = (await late.recv_until(lambda f: f["cmd"] == 30))["msgs"]
    assert m["recalled"] is True and m["content"] == ""
    await late.send(cmd=27, q="secret0")
    assert (await late.recv_until(lambda f: f["cmd"] == 39))["hits"] == []
    await sa.send(cmd=25, id=424242)
    assert (await sa.recv_until(lambda f: f["cmd"] == 2))["error"] == "unknown_message"


async def test_recall_window_passed(client, settings) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    (ack,) = await send_texts(sa, b.id, 1)
    client.app[SERVICES].settings.__dict__["recall_window_seconds"] = 0  # window over
    try:
        import asyncio

        await asyncio.sleep(0.01)
        await sa.send(cmd=25, id=ack["id"])
        err = await sa.recv_until(lambda f: f["cmd"] == 2)
        assert err["error"] == "recall_window_passed" and err["code"] == 4033
    finally:
        client.app[SERVICES].settings.__dict__["recall_window_seconds"] = 120


async def test_history_pages_backwards(client) -> None:
    a, b, c = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    await send_texts(sa, b.id, 7)
    await sa.send(cmd=22, rid="h", conv=conv_of(a, b), limit=3)
    page = await sa.recv_until(lambda f: f["cmd"] == 32)
    assert [m["seq"] for m in page["msgs"]] == [5, 6, 7] and page["more"] is True
    await sa.send(cmd=22, conv=conv_of(a, b), before=2, limit=3)
    page = await sa.recv_until(lambda f: f["cmd"] == 32)
    assert [m["seq"] for m in page["msgs"]] == [1] and page["more"] is False
    sc = await connect(client, c)
    await sc.send(cmd=22, conv=conv_of(a, b))
    assert (await sc.recv_until(lambda f: f["cmd"] == 2))["error"] == "not_in_conversation"


@pytest.mark.parametrize(("q", "error"), [("", "bad_query"), ("   ", "bad_query"), ("x" * 10240, "bad_query")])
async def test_search_bad_queries(client, q: str, error: str) -> None:
    a = await make_user(client)
    sa = await connect(client, a)
    await sa.send(cmd=27, q=q)
    err = await sa.recv_until(lambda f: f["cmd"] == 2)
    assert err["error"] == error and err["code"] == 4006


async def test_search_chinese_in_own_conversations_only(client) -> None:
    a, b, c = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    await befriend(client, b, c)
    sa, sb = await connect(client, a), await connect(client, b)
    await sa.send(cmd=10, dstid=b.id, media=1, content="我们明天去爬山吧", cid="s1")
    await sa.reply()
    await sb.send(cmd=10, dstid=c.id, media=1, content="明天爬山不去了", cid="s2")
    await sb.reply()
    await sa.send(cmd=27, rid="q", q="爬山")
    res = await sa.recv_until(lambda f: f["cmd"] == 39)
    assert [h["content"] for h in res["hits"]] == ["我们明天去爬山吧"] and res["hits"][0]["seq"] == 1
    await sb.send(cmd=27, q="爬山", limit=1)
    res = await sb.recv_until(lambda f: f["cmd"] == 39)
    assert [h["content"] for h in res["hits"]] == ["明天爬山不去了"] and res["more"] is True
    await sb.send(cmd=27, q="爬山", before=res["hits"][0]["id"])
    res = await sb.recv_until(lambda f: f["cmd"] == 39)
    assert [h["content"] for h in res["hits"]] == ["我们明天去爬山吧"] and res["more"] is False


async def test_offline_period_then_unread_and_sync_on_second_device(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    await send_texts(sa, b.id, 4)
    tablet = await connect(client, b, autosync=0)
    await tablet.send(cmd=21)
    (c,) = (await tablet.recv_until(lambda f: f["cmd"] == 31))["convs"]
    assert c["unread"] == 4 and c["last"]["content"] == "m3"
    await tablet.send(cmd=20, after={c["conv"]: 0})
    page = await tablet.recv_until(lambda f: f["cmd"] == 30)
    assert [m["content"] for m in page["msgs"]] == ["m0", "m1", "m2", "m3"]


def is_event(f: dict) -> bool:
    return f.get("cmd") == 11 and f.get("media") == 10


async def test_group_events_are_messages_in_the_stream(client) -> None:
    from tests.integration.chatkit import api

    owner, m1, m2 = await make_user(client), await make_user(client), await make_user(client)
    # open + shared: the seed's groups, where a later member sees the whole stream.
    gid = await make_group(client, owner, m1, joinpolicy="open", visibility="shared")
    so, s1 = await connect(client, owner), await connect(client, m1)
    assert (await api(client, "/contact/joincommunity", m2, dstid=gid))["code"] == 0
    joined = await so.recv_until(lambda f: is_event(f) and f["amount"] == m2.id)
    assert (joined["content"], joined["amount"], joined["userid"]) == ("joined", m2.id, m2.id)
    assert (await api(client, "/contact/renamecommunity", owner, dstid=gid, name="新名字"))["code"] == 0
    renamed = await s1.recv_until(lambda f: is_event(f) and f["content"] == "renamed")
    assert renamed["memo"] == "新名字"
    assert (await api(client, "/contact/removemember", owner, dstid=gid, memberid=m1.id))["code"] == 0
    removed = await s1.recv_until(lambda f: is_event(f) and f["content"] == "removed")  # the subject sees it
    assert removed["amount"] == m1.id and removed["userid"] == owner.id
    # After removal m1 no longer gets the group, and may not post into it.
    await so.send(cmd=11, dstid=gid, media=1, content="after", cid="after")
    await so.reply()
    await s1.send(cmd=11, dstid=gid, media=1, content="still here?")
    assert (await s1.recv_until(lambda f: f["cmd"] in (2, 11) and f.get("content") != "removed"))["cmd"] == 2
    # A member syncing later sees the same events in order, gapless.
    late = await connect(client, m2, autosync=0)
    await late.send(cmd=20, after={f"g{gid}": 0})
    page = await late.recv_until(lambda f: f["cmd"] == 30)
    kinds = [(m["seq"], m["content"]) for m in page["msgs"]]
    assert [k for _, k in kinds][:5] == ["created", "joined", "joined", "renamed", "removed"]
    assert [s for s, _ in kinds] == list(range(1, len(kinds) + 1))


async def test_client_cannot_send_event_media(client) -> None:
    owner = await make_user(client)
    gid = await make_group(client, owner)
    so = await connect(client, owner)
    await so.send(cmd=11, dstid=gid, media=10, content="joined")
    assert (await so.reply())["error"] == "unknown_media"


async def test_logout_and_password_change_close_sockets(client) -> None:
    from tests.integration.chatkit import api

    a = await make_user(client)
    phone = await connect(client, a)
    r = await client.post("/user/login", data={"mobile": a.mobile, "passwd": "secret12"})
    token2 = (await r.json())["data"]["token"]
    from tests.integration.chatkit import User

    a2 = User(a.id, token2, a.mobile)
    laptop = await connect(client, a2)
    # Logging out the laptop's token closes only the laptop.
    assert (await api(client, "/user/logout", a2))["code"] == 0
    msg = await laptop.ws.receive(timeout=5)
    assert msg.type.name == "CLOSE" and msg.data == 4001
    await phone.send(cmd=0)
    assert (await phone.recv_until(lambda f: f["cmd"] == 0))["cmd"] == 0
    # A password change closes every socket of the user.
    assert (await api(client, "/user/password", a, oldpasswd="secret12", newpasswd="newsecret1"))["code"] == 0
    msg = await phone.recv_close()
    assert msg.type.name == "CLOSE" and msg.data == 4001


async def test_friends_read_at_the_handshake_need_no_query_to_message(client, monkeypatch) -> None:
    """The handshake reads the user's friends; the first message to one of them is
    authorized from that, without a friendship query per pair (a reconnect storm
    followed by a burst of messages would otherwise run one query per pair)."""
    from imhub.app import SERVICES

    a, b, c = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    social = client.app[SERVICES].social
    asked: list[tuple[int, int]] = []
    are_friends = social.are_friends

    async def counting(x: int, y: int) -> bool:
        asked.append((x, y))
        return await are_friends(x, y)

    monkeypatch.setattr(social, "are_friends", counting)
    sa = await connect(client, a)
    await sa.send(cmd=10, dstid=b.id, media=1, content="hi", cid="f1")
    assert (await sa.reply())["cmd"] == 1
    assert asked == []
    await befriend(client, a, c)  # after the handshake: asked once, then cached
    asked.clear()  # (the friend's profile in the addfriend answer asked too)
    for cid in ("f2", "f3"):
        await sa.send(cmd=10, dstid=c.id, media=1, content="hi", cid=cid)
        assert (await sa.reply())["cmd"] == 1
    assert asked == [(a.id, c.id)]


async def test_unfriended_cannot_message(client) -> None:
    from tests.integration.chatkit import api

    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    await sa.send(cmd=10, dstid=b.id, media=1, content="hi", cid="u1")
    assert (await sa.reply())["cmd"] == 1
    assert (await api(client, "/contact/delfriend", b, dstid=a.id))["code"] == 0
    await sa.send(cmd=10, dstid=b.id, media=1, content="hi again", cid="u2")
    assert (await sa.reply())["error"] == "not_friend"
