"""Message features of issue #19 at the protocol level: replies, edits, delete for me,
reactions, pinned messages and per-user conversation settings, mentions, forwards.
Two devices per user, a third party, a non-member, devices that were offline syncing
what changed; seed clients get each new event downgraded or not at all. SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import imhub.services.messaging as messaging
from imhub.config import Settings
from imhub.services.messaging import CHANGES_PER_MINUTE
from tests.integration.chatkit import Socket, User, api, befriend, connect, is_msg, join_group, make_group, make_user


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


async def connect_seed(client: TestClient, user: User, autosync: int = 0) -> Socket:
    """A seed client's connection (no ``v``), registered once a heartbeat with a ``rid``
    (which a seed connection does get an answer to) came back. Frames that arrived
    first (the backlog) stay in ``_early`` for :meth:`Socket.recv`."""
    params = {"id": str(user.id), "token": user.token, "autosync": str(autosync)}
    ws = await client.ws_connect("/chat", params=params)
    sock = Socket(ws)
    await sock.send(cmd=0, rid="ready")
    while (frame := await sock._read(5.0)).get("rid") != "ready":
        sock._early.append(frame)
    return sock


def pconv(a: User, b: User) -> str:
    lo, hi = sorted((a.id, b.id))
    return f"p{lo}_{hi}"


async def send(sock: Socket, cid: str, **frame: Any) -> dict[str, Any]:
    """Send a message; returns its ack."""
    await sock.send(cid=cid, **frame)
    ack = await sock.reply()
    assert ack["cmd"] == 1, ack
    return ack


async def error_of(sock: Socket, **frame: Any) -> str:
    await sock.send(**frame)
    err = await sock.recv_until(lambda f: f.get("cmd") == 2)
    return str(err["error"])


async def history(client: TestClient, who: User, conv: str) -> list[dict[str, Any]]:
    body = await api(client, "/message/history", who, conv=conv)
    assert body["code"] == 0, body
    return list(body["rows"])


async def sync(sock: Socket, after: dict[str, int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        await sock.send(cmd=20, rid="s", after=after)
        page = await sock.recv_until(lambda f: f.get("cmd") == 30)
        out.extend(page["msgs"])
        after = page["after"]
        if not page["more"]:
            return out


def by_id(rows: list[dict[str, Any]], ident: int) -> dict[str, Any]:
    return next(m for m in rows if m["id"] == ident)


# --- replies ---------------------------------------------------------------------------


async def test_reply_carries_its_quote_live_in_history_and_to_seed_clients(client: TestClient) -> None:
    a, b, stranger = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    a1, a2 = await connect(client, a, autosync=0), await connect(client, a, autosync=0)
    b1 = await connect(client, b, autosync=0)
    seed_a = await connect_seed(client, a)
    original = await send(a1, "o1", cmd=10, dstid=b.id, media=1, content="the original text")
    await b1.recv_until(is_msg)
    await a2.recv_until(is_msg)
    await seed_a.recv_until(is_msg)

    await send(b1, "r1", cmd=10, dstid=a.id, media=1, content="my answer", reply_to=original["id"])
    for sock in (a1, a2):
        live = await sock.recv_until(is_msg)
        assert live["reply_to"] == original["id"]
        assert live["reply"] == {"id": original["id"], "seq": original["seq"], "userid": a.id, "media": 1,
                                 "excerpt": "the original text"}
    seeded = await seed_a.recv_until(lambda f: f.get("cmd") == 10)
    assert seeded["media"] == 1
    assert seeded["content"] == f'[reply to user {a.id}: "the original text"] my answer'
    assert "reply" not in seeded or seeded["content"].endswith("my answer")

    rows = await history(client, b, pconv(a, b))
    assert rows[-1]["reply"]["excerpt"] == "the original text"

    # Recalled: the quote says so, in history and sync.
    assert (await api(client, "/message/recall", a, id=original["id"]))["code"] == 0
    rows = await history(client, b, pconv(a, b))
    assert rows[-1]["reply"] == {"id": original["id"], "seq": original["seq"], "userid": a.id, "media": 1,
                                 "excerpt": "", "recalled": True}
    synced = await sync(a1, {pconv(a, b): 0})
    assert synced[-1]["reply"]["recalled"] is True

    # Only a message of the same conversation, that exists, can be quoted.
    await befriend(client, a, stranger)
    other = await send(a1, "o2", cmd=10, dstid=stranger.id, media=1, content="elsewhere")
    assert await error_of(b1, cmd=10, dstid=a.id, media=1, content="x", cid="r2", reply_to=other["id"]) == (
        "unknown_message"
    )
    assert await error_of(b1, cmd=10, dstid=a.id, media=1, content="x", cid="r3", reply_to=10**9) == (
        "unknown_message"
    )
    assert await error_of(b1, cmd=10, dstid=a.id, media=1, content="x", cid="r4", reply_to="zz") == "bad_frame"


async def test_a_reply_in_the_offline_backlog_carries_its_quote(client: TestClient) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a, autosync=0)
    original = await send(sa, "q1", cmd=10, dstid=b.id, media=4, url="/mnt/a.png", pic="/mnt/a_s.png")
    await send(sa, "q2", cmd=10, dstid=b.id, media=1, content="look at this", reply_to=original["id"])
    modern = await connect(client, b)  # autosync: the backlog first
    got = await modern.recv_until(lambda f: is_msg(f) and f.get("reply_to"))
    assert got["reply"] == {"id": original["id"], "seq": original["seq"], "userid": a.id, "media": 4,
                            "excerpt": ""}
    c = await make_user(client)
    await befriend(client, a, c)
    original = await send(sa, "q3", cmd=10, dstid=c.id, media=4, url="/mnt/a.png", pic="/mnt/a_s.png")
    await send(sa, "q4", cmd=10, dstid=c.id, media=1, content="look at this", reply_to=original["id"])
    seed = await connect_seed(client, c, autosync=1)
    texts = [f["content"] for f in [await seed.recv() for _ in range(2)]]
    assert texts[1] == f'[reply to user {a.id}: "[image]"] look at this'


async def test_reply_in_a_group_before_the_join_is_refused_under_joined_visibility(client: TestClient) -> None:
    owner, early, late, outsider = [await make_user(client) for _ in range(4)]
    gid = await make_group(client, owner, early, visibility="joined")
    o = await connect(client, owner, autosync=0)
    before = await send(o, "g1", cmd=11, dstid=gid, media=1, content="before the join")
    await join_group(client, owner, late, gid)
    lt = await connect(client, late, autosync=0)
    assert await error_of(lt, cmd=11, dstid=gid, media=1, content="x", cid="l1", reply_to=before["id"]) == (
        "unknown_message"
    )
    ea = await connect(client, early, autosync=0)
    await send(ea, "e1", cmd=11, dstid=gid, media=1, content="seen it", reply_to=before["id"])
    got = await lt.recv_until(lambda f: is_msg(f) and f.get("content") == "seen it")
    assert got["reply"]["excerpt"] == "before the join"  # the replier saw it; the quote is part of the reply
    out = await connect(client, outsider, autosync=0)
    assert await error_of(out, cmd=11, dstid=gid, media=1, content="x", cid="x1", reply_to=before["id"]) == (
        "not_member"
    )


# --- edits -----------------------------------------------------------------------------


def is_update(kind: str) -> Any:
    return lambda f: f.get("media") == 11 and f.get("memo") == kind


async def test_edit_reaches_every_device_and_an_offline_device_learns_it_by_sync(client: TestClient) -> None:
    a, b, stranger = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    conv = pconv(a, b)
    a1, a2, b1 = await connect(client, a, autosync=0), await connect(client, a, autosync=0), await connect(
        client, b, autosync=0)
    b_offline = await connect(client, b, autosync=0)
    seed_b = await connect_seed(client, b)
    sent = await send(a1, "t1", cmd=10, dstid=b.id, media=1, content="helo wrld")
    for sock in (a2, b1, b_offline, seed_b):
        await sock.recv_until(is_msg)
    await b_offline.close()

    await a1.send(cmd=50, rid="e1", id=sent["id"], content="hello world")
    done = await a1.recv_until(lambda f: f.get("cmd") == 43)
    assert done["rid"] == "e1"
    update = done["msg"]
    assert update["media"] == 11 and update["memo"] == "edited" and update["amount"] == sent["id"]
    assert update["update"]["content"] == "hello world" and update["update"]["seq"] == sent["seq"]
    assert update["seq"] == sent["seq"] + 1
    for sock in (a2, b1):
        live = await sock.recv_until(is_update("edited"))
        assert live["update"] == update["update"]
    await seed_b.no_frame()  # a seed client gets nothing of an edit (no draft cleared)

    # The offline device syncs past the message and learns of the edit.
    back = await connect(client, b, autosync=0)
    synced = await sync(back, {conv: sent["seq"]})
    assert [m["memo"] for m in synced] == ["edited"]
    assert synced[0]["update"]["content"] == "hello world"
    # History and a sync from the start give the latest text, with edited_at.
    latest = by_id(await history(client, b, conv), sent["id"])
    assert latest["content"] == "hello world" and latest["edited_at"] == update["update"]["edited_at"]
    assert by_id(await sync(back, {conv: 0}), sent["id"])["content"] == "hello world"
    # Search knows the new text only.
    assert (await api(client, "/message/search", b, q="wrld"))["rows"] == []
    assert [m["id"] for m in (await api(client, "/message/search", b, q="world"))["rows"]] == [sent["id"]]
    # The update is not a message of its own: not unread, not the conversation's last.
    convs = {c["conv"]: c for c in (await api(client, "/message/conversations", b))["rows"]}
    assert convs[conv]["unread"] == 1
    assert convs[conv]["last"]["id"] == sent["id"] and convs[conv]["last"]["content"] == "hello world"

    # Only the sender edits, only text, only members; recalling erases the edits too.
    await b1.send(cmd=50, rid="e2", id=sent["id"], content="mine now")
    assert (await b1.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_yours"
    st = await connect(client, stranger, autosync=0)
    await st.send(cmd=50, rid="e3", id=sent["id"], content="hijack")
    assert (await st.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_in_conversation"
    image = await send(a1, "i1", cmd=10, dstid=b.id, media=4, url="/mnt/x.png", pic="/mnt/x.png")
    await a1.send(cmd=50, rid="e4", id=image["id"], content="text now")
    assert (await a1.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_editable"
    body = await api(client, "/message/edit", b, id=sent["id"], content="x")
    assert body["errcode"] == 4032, body
    assert (await api(client, "/message/recall", a, id=sent["id"]))["code"] == 0
    synced = await sync(back, {conv: sent["seq"]})
    assert all("hello" not in str(m) for m in synced), synced
    await a1.send(cmd=50, rid="e5", id=sent["id"], content="again")
    assert (await a1.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_editable"


async def test_edit_window(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a, autosync=0)
    sent = await send(sa, "w1", cmd=10, dstid=b.id, media=1, content="soon old")
    later = messaging.now_ms() + 48 * 3600 * 1000 + 1000
    monkeypatch.setattr(messaging, "now_ms", lambda: later)
    body = await api(client, "/message/edit", a, id=sent["id"], content="too late")
    assert body["error"] == "edit_window_passed", body


# --- delete for me ---------------------------------------------------------------------


async def no_update(sock: Socket, within: float = 0.4) -> None:
    """Nothing but receipts and presence arrives for a while (no message, no update)."""
    try:
        frame = await sock.recv_until(lambda f: f.get("cmd") in (10, 11, 43), timeout=within)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame {frame!r}")


async def test_delete_for_me_hides_on_my_devices_only_and_syncs_to_an_offline_one(client: TestClient) -> None:
    a, b, stranger = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    conv = pconv(a, b)
    a1, a2, b1 = await connect(client, a, autosync=0), await connect(client, a, autosync=0), await connect(
        client, b, autosync=0)
    m1 = await send(a1, "d1", cmd=10, dstid=b.id, media=1, content="embarrassing")
    m2 = await send(a1, "d2", cmd=10, dstid=b.id, media=1, content="fine")
    m3 = await send(b1, "d3", cmd=10, dstid=a.id, media=1, content="lol", reply_to=m1["id"])
    await a2.recv_until(lambda f: is_msg(f) and f["id"] == m3["id"])
    await a1.send(cmd=21, rid="c0")
    own = (await a1.recv_until(lambda f: f.get("cmd") == 31))["own"]
    assert own == {"conv": f"u{a.id}", "last_seq": 0}
    a_off = await connect(client, a, autosync=0)
    await a_off.close()

    await a1.send(cmd=52, rid="h1", ids=[m1["id"]])
    done = await a1.recv_until(lambda f: f.get("cmd") == 43)
    assert done["msg"]["conv"] == f"u{a.id}" and done["msg"]["memo"] == "hidden"
    assert done["msg"]["update"]["ids"] == [m1["id"]]
    live = await a2.recv_until(is_update("hidden"))
    assert live["update"]["ids"] == [m1["id"]]
    await no_update(b1)  # the other side learns nothing

    rows = await history(client, a, conv)
    assert [m["id"] for m in rows] == [m2["id"], m3["id"]]
    assert rows[-1]["reply"] == {"id": m1["id"], "seq": m1["seq"], "userid": a.id, "media": 1, "excerpt": "",
                                 "deleted": True}
    assert [m["id"] for m in await history(client, b, conv)] == [m1["id"], m2["id"], m3["id"]]
    assert (await api(client, "/message/search", a, q="embarrassing"))["rows"] == []

    # The device that was offline learns it from its own stream.
    back = await connect(client, a, autosync=0)
    await back.send(cmd=21, rid="c1")
    own = (await back.recv_until(lambda f: f.get("cmd") == 31))["own"]
    assert own["last_seq"] == 1
    synced = await sync(back, {own["conv"]: 0, conv: 0})
    assert [m["id"] for m in synced if m["conv"] == conv] == [m2["id"], m3["id"]]
    assert [m["update"]["ids"] for m in synced if m["conv"] == own["conv"]] == [[m1["id"]]]
    # Nobody else may read that stream.
    await b1.send(cmd=20, rid="s9", after={own["conv"]: 0})
    assert (await b1.recv_until(lambda f: f.get("cmd") == 30))["denied"] == [own["conv"]]

    # Non-members, unknown messages.
    st = await connect(client, stranger, autosync=0)
    await st.send(cmd=52, rid="h2", ids=[m2["id"]])
    assert (await st.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_in_conversation"
    await a1.send(cmd=52, rid="h3", ids=[10**9])
    assert (await a1.recv_until(lambda f: f.get("cmd") == 2))["error"] == "unknown_message"

    # A whole conversation: gone for me, back with the next message.
    body = await api(client, "/message/hide", a, conv=conv)
    assert body["code"] == 0 and body["data"]["update"] == {"conv": conv, "upto": m3["seq"]}, body
    await a2.recv_until(is_update("cleared"))
    assert await history(client, a, conv) == []
    assert len(await history(client, b, conv)) == 3
    mine = {c["conv"]: c for c in (await api(client, "/message/conversations", a))["rows"]}[conv]
    assert mine["last"] is None and mine["unread"] == 0
    m4 = await send(b1, "d4", cmd=10, dstid=a.id, media=1, content="hello again")
    assert [m["id"] for m in await history(client, a, conv)] == [m4["id"]]
    mine = {c["conv"]: c for c in (await api(client, "/message/conversations", a))["rows"]}[conv]
    assert mine["last"]["id"] == m4["id"] and mine["unread"] == 1


# --- reactions -------------------------------------------------------------------------


async def updates_within(sock: Socket, kind: str, within: float) -> list[dict[str, Any]]:
    """Every update of ``kind`` that arrives within ``within`` seconds."""
    got: list[dict[str, Any]] = []
    try:
        while True:
            got.append(await sock.recv_until(is_update(kind), timeout=within))
    except TimeoutError:
        return got


async def test_reactions_batched_live_synced_and_bounded(client: TestClient) -> None:
    owner, member, third, outsider = [await make_user(client) for _ in range(4)]
    gid = await make_group(client, owner, member, third)
    conv = f"g{gid}"
    o = await connect(client, owner, autosync=0)
    m1, m2, c1 = await connect(client, member, autosync=0), await connect(client, member, autosync=0), await connect(
        client, third, autosync=0)
    seed_c = await connect_seed(client, third)
    sent = await send(o, "r1", cmd=11, dstid=gid, media=1, content="vote")
    for sock in (m1, m2, c1, seed_c):
        await sock.recv_until(lambda f: is_msg(f) and f["id"] == sent["id"])
    offline = await connect(client, member, autosync=0)
    await offline.close()
    unread = {c["conv"]: c for c in (await api(client, "/message/conversations", member))["rows"]}[conv]["unread"]

    await m1.send(cmd=51, rid="x1", id=sent["id"], emoji="👍")
    done = await m1.recv_until(lambda f: f.get("cmd") == 43)
    assert done["reactions"] == [{"emoji": "👍", "count": 1, "users": [member.id]}]
    for emoji in ("👍", "❤️", "😂"):
        await c1.send(cmd=51, rid="x2", id=sent["id"], emoji=emoji)
        assert (await c1.recv_until(lambda f: f.get("cmd") in (2, 43)))["cmd"] == 43
    await m1.send(cmd=51, rid="x3", id=sent["id"], emoji="👍", add=False)
    await m1.recv_until(lambda f: f.get("cmd") == 43)
    final = [{"emoji": "👍", "count": 1, "users": [third.id]}, {"emoji": "❤️", "count": 1, "users": [third.id]},
             {"emoji": "😂", "count": 1, "users": [third.id]}]
    for sock in (o, m1, m2, c1):  # every device, the reacting ones too: batched, and ending current
        updates = await updates_within(sock, "reactions", 1.0)
        assert 1 <= len(updates) < 5, updates
        assert updates[-1]["update"] == {"id": sent["id"], "seq": sent["seq"], "reactions": final}
    await seed_c.no_frame()

    # Bounded per user; only members; a bad emoji is a bad frame.
    await c1.send(cmd=51, rid="x4", id=sent["id"], emoji="🎉")
    assert (await c1.recv_until(lambda f: f.get("cmd") == 2))["error"] == "too_many_reactions"
    x = await connect(client, outsider, autosync=0)
    await x.send(cmd=51, rid="x5", id=sent["id"], emoji="👎")
    assert (await x.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_in_conversation"
    await x.send(cmd=51, rid="x6", id=sent["id"], emoji="a b")
    assert (await x.recv_until(lambda f: f.get("cmd") == 2))["error"] == "bad_frame"

    # History and sync show them; the device that was offline learns them by sync.
    assert by_id(await history(client, member, conv), sent["id"])["reactions"] == final
    back = await connect(client, member, autosync=0)
    synced = await sync(back, {conv: sent["seq"]})
    assert synced and all(m["memo"] == "reactions" for m in synced)
    assert synced[-1]["update"]["reactions"] == final
    body = await api(client, "/message/react", owner, id=sent["id"], emoji="👍")
    assert body["code"] == 0 and body["data"]["reactions"][0]["count"] == 2, body
    # Updates are not unread, and reacting does not mark the rest read.
    convs = {c["conv"]: c for c in (await api(client, "/message/conversations", member))["rows"]}
    assert convs[conv]["unread"] == unread and convs[conv]["last"]["id"] == sent["id"]


# --- pinned messages, pinned and muted conversations -----------------------------------


async def test_pinned_messages_owner_and_admins_in_groups_either_side_in_1to1(client: TestClient) -> None:
    owner, admin, member, outsider = [await make_user(client) for _ in range(4)]
    gid = await make_group(client, owner, admin, member)
    conv = f"g{gid}"
    assert (await api(client, "/contact/setrole", owner, dstid=gid, memberid=admin.id, role="admin"))["code"] == 0
    o, ad = await connect(client, owner, autosync=0), await connect(client, admin, autosync=0)
    m1, m2 = await connect(client, member, autosync=0), await connect(client, member, autosync=0)
    sent = await send(m1, "p1", cmd=11, dstid=gid, media=1, content="rules: be nice")
    for sock in (o, ad, m2):
        await sock.recv_until(lambda f: is_msg(f) and f["id"] == sent["id"])
    offline = await connect(client, member, autosync=0)
    await offline.close()

    await m1.send(cmd=53, rid="n1", id=sent["id"])
    assert (await m1.recv_until(lambda f: f.get("cmd") == 2))["error"] == "role_required"
    x = await connect(client, outsider, autosync=0)
    await x.send(cmd=53, rid="n2", id=sent["id"])
    assert (await x.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_in_conversation"

    await ad.send(cmd=53, rid="n3", id=sent["id"])
    done = await ad.recv_until(lambda f: f.get("cmd") == 43)
    assert done["msg"]["memo"] == "pinned" and done["msg"]["update"]["pins"] == [sent["id"]]
    for sock in (o, m1, m2):
        assert (await sock.recv_until(is_update("pinned")))["update"]["pins"] == [sent["id"]]
    assert by_id(await history(client, member, conv), sent["id"])["pinned"] is True
    convs = {c["conv"]: c for c in (await api(client, "/message/conversations", member))["rows"]}
    assert convs[conv]["pins"] == [sent["id"]]
    back = await connect(client, member, autosync=0)
    assert [m["memo"] for m in await sync(back, {conv: sent["seq"]})] == ["pinned"]

    body = await api(client, "/message/pin", owner, id=sent["id"], pinned="false")
    assert body["code"] == 0 and body["data"]["update"]["pins"] == [], body
    assert (await m1.recv_until(is_update("unpinned")))["update"]["pins"] == []
    assert "pinned" not in by_id(await history(client, member, conv), sent["id"])

    # 1:1: either side.
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a, autosync=0)
    msg = await send(sa, "p2", cmd=10, dstid=b.id, media=1, content="address: 1 main st")
    body = await api(client, "/message/pin", b, id=msg["id"])
    assert body["code"] == 0 and body["data"]["update"]["pins"] == [msg["id"]], body
    assert (await sa.recv_until(is_update("pinned")))["update"]["id"] == msg["id"]


async def test_pin_and_mute_conversations_per_user_across_devices(client: TestClient) -> None:
    a, b, owner = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    gid = await make_group(client, owner, a, b)
    a1, a2 = await connect(client, a, autosync=0), await connect(client, a, autosync=0)
    o = await connect(client, owner, autosync=0)
    await send(o, "m0", cmd=11, dstid=gid, media=1, content="newest first")
    offline = await connect(client, a, autosync=0)
    await offline.close()

    await a1.send(cmd=54, rid="s1", conv=pconv(a, b), pinned=True)
    done = await a1.recv_until(lambda f: f.get("cmd") == 43)
    assert done["msg"]["conv"] == f"u{a.id}" and done["msg"]["memo"] == "conv"
    assert done["msg"]["update"] == {"conv": pconv(a, b), "pinned": True, "muted": False}
    assert (await a2.recv_until(is_update("conv")))["update"]["pinned"] is True
    await a1.send(cmd=54, rid="s2", conv=f"g{gid}", muted=True)
    assert (await a1.recv_until(lambda f: f.get("cmd") == 43))["msg"]["update"] == {
        "conv": f"g{gid}", "pinned": False, "muted": True}

    rows = (await api(client, "/message/conversations", a))["rows"]
    assert rows[0]["conv"] == pconv(a, b) and rows[0]["pinned"] is True  # on top though older
    group = next(c for c in rows if c["conv"] == f"g{gid}")
    assert group["muted"] is True
    unread = group["unread"]
    await send(o, "m1", cmd=11, dstid=gid, media=1, content="still counts")
    group = next(c for c in (await api(client, "/message/conversations", a))["rows"] if c["conv"] == f"g{gid}")
    assert group["unread"] == unread + 1  # muted still counts unread
    # Only mine: b's list is unchanged.
    theirs = {c["conv"]: c for c in (await api(client, "/message/conversations", b))["rows"]}
    assert theirs[pconv(a, b)]["pinned"] is False and theirs[f"g{gid}"]["muted"] is False

    back = await connect(client, a, autosync=0)
    synced = await sync(back, {f"u{a.id}": 0})
    assert [m["update"] for m in synced] == [
        {"conv": pconv(a, b), "pinned": True, "muted": False}, {"conv": f"g{gid}", "pinned": False, "muted": True}]
    stranger = await make_user(client)
    body = await api(client, "/message/convsettings", stranger, conv=f"g{gid}", muted="true")
    assert body["errcode"] == 4034, body


# --- mentions --------------------------------------------------------------------------


async def mentioned(client: TestClient, who: User, conv: str) -> bool:
    rows = (await api(client, "/message/conversations", who))["rows"]
    return bool(next(c for c in rows if c["conv"] == conv)["mentioned"])


async def test_mentions_flag_the_mentioned_members_and_all_is_for_owner_and_admins(client: TestClient) -> None:
    owner, member, third, outsider = [await make_user(client) for _ in range(4)]
    await befriend(client, member, third)
    gid = await make_group(client, owner, member, third)
    conv = f"g{gid}"
    o, c1 = await connect(client, owner, autosync=0), await connect(client, third, autosync=0)
    m1, m2 = await connect(client, member, autosync=0), await connect(client, member, autosync=0)
    await api(client, "/message/convsettings", member, conv=conv, muted="true")

    sent = await send(c1, "a1", cmd=11, dstid=gid, media=1, content="@member look", mentions=[member.id, outsider.id])
    for sock in (m1, m2, o):
        live = await sock.recv_until(lambda f: is_msg(f) and f["id"] == sent["id"])
        assert live["mentions"] == [member.id]  # not a member: dropped
    assert await mentioned(client, member, conv)  # muted, and still flagged
    assert not await mentioned(client, owner, conv) and not await mentioned(client, third, conv)
    assert by_id(await history(client, owner, conv), sent["id"])["mentions"] == [member.id]
    await m1.send(cmd=23, conv=conv, seq=sent["seq"])
    await m2.recv_until(lambda f: f.get("cmd") == 33)
    assert not await mentioned(client, member, conv)

    assert await error_of(c1, cmd=11, dstid=gid, media=1, content="@all hi", cid="a2", mentions="all") == (
        "role_required")
    everyone = await send(o, "a3", cmd=11, dstid=gid, media=1, content="@all meeting", mentions="all")
    assert (await m1.recv_until(lambda f: is_msg(f) and f["id"] == everyone["id"]))["mentions"] == "all"
    assert await mentioned(client, member, conv) and await mentioned(client, third, conv)
    assert not await mentioned(client, owner, conv)
    # Only in groups.
    assert await error_of(m1, cmd=10, dstid=third.id, media=1, content="hi", cid="a4", mentions=[third.id]) == (
        "bad_frame")
    assert await error_of(m1, cmd=11, dstid=gid, media=1, content="hi", cid="a5", mentions=["x"]) == "bad_frame"


# --- forwarding ------------------------------------------------------------------------


async def test_forward_keeps_kind_and_media_marks_forwarded_and_checks_everything_first(
    client: TestClient,
) -> None:
    a, b, c, stranger = [await make_user(client) for _ in range(4)]
    await befriend(client, a, b)
    gid = await make_group(client, a, c)
    other = await make_group(client, c, name="not a's")
    a1, a2 = await connect(client, a, autosync=0), await connect(client, a, autosync=0)
    c1, b1 = await connect(client, c, autosync=0), await connect(client, b, autosync=0)
    text = await send(b1, "f1", cmd=10, dstid=a.id, media=1, content="pass it on")
    image = await send(b1, "f2", cmd=10, dstid=a.id, media=4, url="/mnt/cat.png", pic="/mnt/cat_s.png")

    # Everything is checked before anything is sent.
    await a1.send(cmd=55, rid="w1", ids=[text["id"], image["id"]], to=[f"g{gid}", f"g{other}"])
    assert (await a1.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_member"
    await a1.send(cmd=55, rid="w2", ids=[text["id"]], to=[pconv(a, c)])
    assert (await a1.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_friend"
    await no_update(c1)

    await a1.send(cmd=55, rid="w3", ids=[text["id"], image["id"]], to=[f"g{gid}"])
    done = await a1.recv_until(lambda f: f.get("cmd") == 43)
    assert [m["conv"] for m in done["msgs"]] == [f"g{gid}", f"g{gid}"]
    for sock in (c1, a2):
        got = [await sock.recv_until(lambda f: is_msg(f) and f["conv"] == f"g{gid}") for _ in range(2)]
        assert [(m["media"], m["content"], m["url"], m["pic"], m["forwarded"], m["userid"]) for m in got] == [
            (1, "pass it on", "", "", True, a.id), (4, "", "/mnt/cat.png", "/mnt/cat_s.png", True, a.id)]

    # Only what you can read; nothing recalled.
    st = await connect(client, stranger, autosync=0)
    await st.send(cmd=55, rid="w4", ids=[text["id"]], to=[pconv(a, b)])
    assert (await st.recv_until(lambda f: f.get("cmd") == 2))["error"] == "not_in_conversation"
    assert (await api(client, "/message/recall", b, id=text["id"]))["code"] == 0
    body = await api(client, "/message/forward", a, ids=text["id"], to=f"g{gid}")
    assert body["errcode"] == 4041, body
    body = await api(client, "/message/forward", a, ids=image["id"], to=f"g{gid}")
    assert body["code"] == 0 and body["rows"][0]["conv"] == f"g{gid}", body


async def test_changes_are_rate_limited_per_user_over_http_and_socket(client: TestClient) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a, autosync=0)
    sent = await send(sa, "l1", cmd=10, dstid=b.id, media=1, content="tap tap")
    for i in range(CHANGES_PER_MINUTE):
        body = await api(client, "/message/react", b, id=sent["id"], emoji="👍", add="true" if i % 2 == 0 else "false")
        assert body["code"] == 0, (i, body)
    body = await api(client, "/message/react", b, id=sent["id"], emoji="👍")
    assert body["errcode"] == 4290 and body["retry_after"] >= 1, body
    sb = await connect(client, b, autosync=0)
    await sb.send(cmd=51, rid="l2", id=sent["id"], emoji="👍")
    assert (await sb.recv_until(lambda f: f.get("cmd") == 2))["error"] == "rate_limited"
    # Someone else is not affected.
    assert (await api(client, "/message/react", a, id=sent["id"], emoji="👍"))["code"] == 0
