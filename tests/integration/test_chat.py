"""The messaging core over real WebSocket clients against a running server."""

from __future__ import annotations

import pytest
from aiohttp import WSServerHandshakeError

from tests.integration.chatkit import api, befriend, connect, is_msg, make_group, make_user


async def test_private_message_ack_and_delivery(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa, sb = await connect(client, a), await connect(client, b)
    await sa.send(cmd=10, dstid=b.id, media=1, content="你好", cid="c1")
    ack = await sa.recv_until(lambda f: f["cmd"] == 1)
    assert ack["cid"] == "c1" and ack["seq"] == 1 and ack["conv"] == f"p{min(a.id, b.id)}_{max(a.id, b.id)}"
    got = await sb.recv_until(is_msg)
    assert got["userid"] == a.id and got["dstid"] == b.id and got["content"] == "你好"
    assert got["id"] == ack["id"] and got["seq"] == 1
    # The sending socket gets the ack and a 'delivered' receipt, not a copy.
    receipt = await sa.recv()
    assert receipt == {"cmd": 33, "conv": ack["conv"], "userid": b.id, "delivered_seq": 1}
    await sa.no_frame()


async def test_forged_userid_and_non_friend_refused(client) -> None:
    a, b, c = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    await sa.send(cmd=10, userid=b.id, dstid=c.id, media=1, content="x", cid="f1")
    err = await sa.recv()
    assert err["cmd"] == 2 and err["error"] == "forged_userid" and err["cid"] == "f1"
    await sa.send(cmd=10, dstid=c.id, media=1, content="x", cid="f2")
    err = await sa.recv()
    assert err["error"] == "not_friend" and err["code"] == 4030
    await sa.send(cmd=10, dstid=999999, media=1, content="x")
    assert (await sa.recv())["error"] == "unknown_target"
    # Still usable afterwards.
    await sa.send(cmd=10, dstid=b.id, media=1, content="ok", cid="f3")
    assert (await sa.reply())["cmd"] == 1


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("not json", "bad_json"),
        ("[1,2]", "bad_json"),
        ('{"cmd":99}', "unknown_cmd"),
        ('{"cmd":10,"dstid":2,"media":77,"content":"x"}', "unknown_media"),
        ('{"cmd":10,"dstid":"abc","media":1,"content":"x"}', "bad_frame"),
        ('{"cmd":10,"media":1,"content":"x"}', "bad_frame"),
    ],
)
async def test_bad_frames_get_specific_errors(client, raw: str, error: str) -> None:
    a = await make_user(client)
    sa = await connect(client, a)
    await sa.ws.send_str(raw)
    frame = await sa.recv()
    assert frame["cmd"] == 2 and frame["error"] == error
    await sa.send(cmd=0)
    assert (await sa.recv())["cmd"] == 0


async def test_oversize_frame_error_then_close_on_repeat(client, settings) -> None:
    a = await make_user(client)
    sa = await connect(client, a)
    big = "x" * (settings.max_frame_bytes + 10)
    await sa.send(cmd=10, dstid=2, media=1, content=big)
    assert (await sa.recv())["error"] == "frame_too_large"
    await sa.send(cmd=10, dstid=2, media=1, content=big)
    await sa.recv()
    await sa.send(cmd=10, dstid=2, media=1, content=big)
    msg = await sa.ws.receive(timeout=5)
    assert msg.type.name in ("CLOSE", "CLOSING", "CLOSED") and sa.ws.close_code == 1009


async def test_cid_retry_is_deduplicated(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa, sb = await connect(client, a), await connect(client, b)
    await sa.send(cmd=10, dstid=b.id, media=1, content="once", cid="same")
    first = await sa.reply()
    await sa.send(cmd=10, dstid=b.id, media=1, content="once", cid="same")
    second = await sa.reply()
    assert second["cmd"] == 1 and second["id"] == first["id"] and second["seq"] == first["seq"] and second["dup"]
    assert (await sb.recv_until(is_msg))["content"] == "once"
    await sb.no_frame()


async def test_group_delivery_two_tabs_and_non_member(client) -> None:
    owner, m1, outsider = await make_user(client), await make_user(client), await make_user(client)
    gid = await make_group(client, owner, m1)
    so, s1a, s1b, sx = (
        await connect(client, owner), await connect(client, m1), await connect(client, m1),
        await connect(client, outsider),
    )
    await so.send(cmd=11, dstid=gid, media=1, content="hello group", cid="g1")
    ack = await so.reply()
    assert ack["cmd"] == 1 and ack["conv"] == f"g{gid}"
    for s in (s1a, s1b):
        got = await s.recv_until(lambda f: is_msg(f) and f["media"] == 1)
        assert got["content"] == "hello group" and got["userid"] == owner.id and got["seq"] == ack["seq"]
    await sx.send(cmd=11, dstid=gid, media=1, content="let me in")
    assert (await sx.reply())["error"] == "not_member"
    await sx.send(cmd=11, dstid=987654, media=1, content="?")
    assert (await sx.reply())["error"] == "unknown_target"


async def test_sender_other_devices_receive_own_message(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    phone, laptop = await connect(client, a), await connect(client, a)
    await phone.send(cmd=10, dstid=b.id, media=1, content="from phone", cid="p1")
    assert (await phone.reply())["cmd"] == 1
    copy = await laptop.recv_until(is_msg)
    assert copy["content"] == "from phone" and copy["cid"] == "p1"


async def test_join_while_connected_receives_at_once(client) -> None:
    owner, late = await make_user(client), await make_user(client)
    gid = await make_group(client, owner, joinpolicy="open")
    so, sl = await connect(client, owner), await connect(client, late)
    body = await api(client, "/contact/joincommunity", late, userid=late.id, dstid=gid)
    assert body["code"] == 0 and "pending" not in body["data"]
    await so.send(cmd=11, dstid=gid, media=1, content="welcome", cid="w")
    await so.reply()
    assert (await sl.recv_until(lambda f: is_msg(f) and f["media"] == 1))["content"] == "welcome"


async def test_offline_user_gets_missed_messages_in_order_on_connect(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    gid = await make_group(client, a, b)
    sa = await connect(client, a)
    for i in range(5):
        await sa.send(cmd=10, dstid=b.id, media=1, content=f"p{i}", cid=f"p{i}")
        await sa.reply()
        await sa.send(cmd=11, dstid=gid, media=1, content=f"g{i}", cid=f"g{i}")
        await sa.reply()
    # b was offline: a seed-style client (no sync) gets everything right after connecting.
    sb = await connect(client, b)
    got = [await sb.recv_until(is_msg) for _ in range(10)]
    private = [f["content"] for f in got if f["cmd"] == 10]
    group = [f["content"] for f in got if f["cmd"] == 11]
    assert private == [f"p{i}" for i in range(5)] and group == [f"g{i}" for i in range(5)]
    await sb.no_frame()
    await sb.close()
    # Delivered cursors are saved: reconnecting does not replay them.
    sb2 = await connect(client, b)
    await sb2.no_frame(0.5)


async def test_sync_and_conversation_list(client) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    for i in range(5):
        await sa.send(cmd=10, dstid=b.id, media=1, content=f"m{i}", cid=f"m{i}")
        await sa.reply()
    sb = await connect(client, b, autosync=0)
    await sb.send(cmd=21, rid="convs")
    convs = await sb.recv()
    assert convs["cmd"] == 31 and convs["rid"] == "convs"
    (conv,) = convs["convs"]
    assert conv["last_seq"] == 5 and conv["unread"] == 5 and conv["last"]["content"] == "m4"
    await sb.send(cmd=20, rid="s1", after={conv["conv"]: 1}, limit=3)
    page = await sb.recv()
    assert [m["seq"] for m in page["msgs"]] == [2, 3, 4] and page["more"] is True
    await sb.send(cmd=20, rid="s2", after=page["after"], limit=3)
    page2 = await sb.recv()
    assert [m["seq"] for m in page2["msgs"]] == [5] and page2["more"] is False
    await sb.send(cmd=20, after={"g424242": 0, "p1_999999": 0})
    denied = await sb.recv()
    assert sorted(denied["denied"]) == ["g424242", "p1_999999"] and denied["msgs"] == []


async def test_handshake_refusals(client) -> None:
    a = await make_user(client)
    with pytest.raises(WSServerHandshakeError) as e:
        await client.ws_connect("/chat", params={"id": str(a.id), "token": "wrong"})
    assert e.value.status == 401
    with pytest.raises(WSServerHandshakeError) as e:
        await client.ws_connect("/chat", params={"id": str(a.id + 1), "token": a.token})
    assert e.value.status == 403
    with pytest.raises(WSServerHandshakeError) as e:
        await client.ws_connect(
            "/chat", params={"id": str(a.id), "token": a.token}, headers={"Origin": "https://evil.example"}
        )
    assert e.value.status == 403
