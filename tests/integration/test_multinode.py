"""Two nodes (separate ``imhub serve`` processes on different ports) sharing one
PostgreSQL database and a private Redis (or three Redis shards): chat, groups and
presence across nodes;
concurrent writers on both nodes keep seqs gapless; Redis killed and restarted
mid-conversation loses no acked message and tells clients to resync (cmd 37)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import fresh_postgres_database, service_unavailable
from tests.integration.chatkit import Socket, User, api, befriend, connect, is_msg, make_group, make_user
from tests.redisproc import RedisServer
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow

# On one Redis and on three shards (users, groups and presence spread over them).
SHARDS = pytest.mark.parametrize("cluster", [1, 3], indirect=True, ids=["1shard", "3shards"])


class Cluster:
    def __init__(self, redis: RedisServer, nodes: list[ServerProcess], http: list[aiohttp.ClientSession]) -> None:
        self.redis = redis
        self.nodes = nodes
        self.http = http


@pytest.fixture
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    """Two nodes on one private Redis, or (``indirect`` parameter 3) on three Redis
    shards; ``Cluster.redis`` is the first."""
    if not RedisServer.available():
        service_unavailable("redis-server", "not installed")
    async with fresh_postgres_database() as db:
        shards = [RedisServer(tmp_path / f"redis{i}").start() for i in range(getattr(request, "param", 1))]
        redis = shards[0]
        env = {"IMHUB_BUS": "redis", "IMHUB_REDIS_URL": ",".join(s.url for s in shards), "IMHUB_DATABASE_URL": db}
        nodes: list[ServerProcess] = []
        sessions: list[aiohttp.ClientSession] = []
        try:
            for i in range(2):  # one after the other: the first one migrates
                nodes.append(ServerProcess(tmp_path / f"node{i}", **env).start())
            sessions = [aiohttp.ClientSession(base_url=n.url) for n in nodes]
            yield Cluster(redis, nodes, sessions)
        finally:
            for s in sessions:
                await s.close()
            for n in nodes:
                n.stop()
            for shard in shards:
                shard.stop()


async def sync_all(sock: Socket, convs: dict[str, int]) -> list[dict[str, Any]]:
    """Every message after the given seqs, paging until done (cmd 20 -> 30)."""
    out: list[dict[str, Any]] = []
    after = dict(convs)
    while True:
        await sock.send(cmd=20, after=after, limit=200)
        page = await sock.recv_until(lambda f: f.get("cmd") == 30, timeout=10)
        out.extend(page["msgs"])
        after = page["after"]
        if not page["more"]:
            return out


async def drain(sock: Socket, within: float) -> list[dict[str, Any]]:
    """Whatever else arrives within ``within`` seconds."""
    out = []
    try:
        while True:
            out.append(await sock.recv(timeout=within))
    except TimeoutError:
        return out


def pconv(a: User, b: User) -> str:
    return f"p{min(a.id, b.id)}_{max(a.id, b.id)}"


@SHARDS
async def test_chat_groups_and_presence_across_nodes(cluster: Cluster) -> None:
    h1, h2 = cluster.http
    a, b, c = await make_user(h1), await make_user(h2), await make_user(h1)  # type: ignore[arg-type]
    await befriend(h1, a, b)  # type: ignore[arg-type]
    gid = await make_group(h2, b, a, c)  # type: ignore[arg-type]

    sa = await connect(h1, a, autosync=0)  # type: ignore[arg-type]
    # Presence crosses nodes: a (node 0) sees b come online on node 1 ...
    sb = await connect(h2, b, autosync=0)  # type: ignore[arg-type]
    ev = await sa.recv_until(lambda f: f.get("cmd") == 35, timeout=5)
    assert ev["userid"] == b.id and ev["online"] is True
    friends = await api(h1, "/contact/loadfriend", a, userid=a.id)  # type: ignore[arg-type]
    assert [u["online"] for u in friends["rows"]] == [True]
    found = await api(h2, "/user/find", b, id=a.id)  # type: ignore[arg-type]
    assert found["data"]["online"] is True  # asked on node 1 about a user on node 0
    sc = await connect(h2, c, autosync=0)  # type: ignore[arg-type]

    # 1:1 across nodes, both ways.
    await sa.send(cmd=10, dstid=b.id, media=1, content="hi b", cid="a1")
    assert (await sa.reply())["cmd"] == 1
    got = await sb.recv_until(is_msg)
    assert (got["content"], got["userid"]) == ("hi b", a.id)
    await sb.send(cmd=10, dstid=a.id, media=1, content="hi a", cid="b1")
    assert (await sb.reply())["cmd"] == 1
    assert (await sa.recv_until(is_msg))["content"] == "hi a"
    # The delivered receipt crosses back too.
    def receipt(f: dict[str, Any]) -> bool:
        return f.get("cmd") == 33 and f.get("userid") == b.id and f.get("delivered_seq", 0) >= 1

    if not any(receipt(f) for f in sa.frames):  # may have come before "hi a"
        await sa.recv_until(receipt, timeout=5)

    # Group: members on both nodes, each gets it exactly once.
    await sb.send(cmd=11, dstid=gid, media=1, content="hello group", cid="g1")
    assert (await sb.reply())["cmd"] == 1
    for s in (sa, sc):
        m = await s.recv_until(lambda f: is_msg(f) and f.get("cmd") == 11)
        assert m["content"] == "hello group"
    for s in (sa, sc):
        assert [f for f in await drain(s, 0.4) if f.get("cid") == "g1"] == []  # no second copy

    # ... and go offline on node 1.
    await sb.close()
    ev = await sa.recv_until(lambda f: f.get("cmd") == 35 and f.get("online") is False, timeout=5)
    assert ev["userid"] == b.id
    friends = await api(h1, "/contact/loadfriend", a, userid=a.id)  # type: ignore[arg-type]
    assert [u["online"] for u in friends["rows"]] == [False]
    await sa.close()
    await sc.close()


@SHARDS
async def test_join_and_removal_on_one_node_take_effect_on_the_other(cluster: Cluster) -> None:
    """The member's socket is on node 1; the join and the removal are HTTP calls to
    node 0. The group must reach the socket at once, and stop reaching it at once."""
    h1, h2 = cluster.http
    owner, member = await make_user(h1), await make_user(h1)  # type: ignore[arg-type]
    gid = await make_group(h1, owner, joinpolicy="open")  # type: ignore[arg-type]
    so = await connect(h1, owner, autosync=0)  # type: ignore[arg-type]
    sm = await connect(h2, member, autosync=0)  # type: ignore[arg-type]
    assert (await api(h1, "/contact/joincommunity", member, dstid=gid))["code"] == 0  # type: ignore[arg-type]
    await so.send(cmd=11, dstid=gid, media=1, content="welcome", cid="w1")
    assert (await so.reply())["cmd"] == 1
    assert (await sm.recv_until(lambda f: is_msg(f) and f["content"] == "welcome", timeout=5))["cmd"] == 11
    removed = await api(h1, "/contact/removemember", owner, dstid=gid, memberid=member.id)  # type: ignore[arg-type]
    assert removed["code"] == 0
    await sm.recv_until(lambda f: f.get("media") == 10 and f.get("content") == "removed", timeout=5)
    await so.send(cmd=11, dstid=gid, media=1, content="after removal", cid="w2")
    assert (await so.reply())["cmd"] == 1
    await sm.send(cmd=0)
    frames = []
    while True:
        f = await sm.recv(timeout=5)
        if f.get("cmd") == 0:
            break
        frames.append(f)
    await asyncio.sleep(0.5)
    await sm.send(cmd=0)
    while (f := await sm.recv(timeout=5)).get("cmd") != 0:
        frames.append(f)
    assert not [f for f in frames if f.get("content") == "after removal"]
    await so.close()
    await sm.close()


@SHARDS
async def test_unfriending_on_one_node_takes_effect_on_the_other(cluster: Cluster) -> None:
    """a's socket is on node 0, which trusts the friendship it read at the handshake;
    b unfriends a through node 1. a's next message must be refused at once, not when
    node 0's friend cache expires."""
    h1, h2 = cluster.http
    a, b = await make_user(h1), await make_user(h1)  # type: ignore[arg-type]
    await befriend(h1, a, b)  # type: ignore[arg-type]
    sa = await connect(h1, a, autosync=0)  # type: ignore[arg-type]
    await sa.send(cmd=10, dstid=b.id, media=1, content="hi", cid="f1")
    assert (await sa.reply())["cmd"] == 1
    assert (await api(h2, "/contact/delfriend", b, dstid=a.id))["code"] == 0  # type: ignore[arg-type]
    await asyncio.sleep(0.5)  # the unfriended envelope crosses Redis
    await sa.send(cmd=10, dstid=b.id, media=1, content="still there?", cid="f2")
    assert (await sa.reply())["error"] == "not_friend"
    await sa.close()


@SHARDS
async def test_concurrent_writers_on_two_nodes_keep_seqs_gapless(cluster: Cluster) -> None:
    h1, h2 = cluster.http
    a, b = await make_user(h1), await make_user(h2)  # type: ignore[arg-type]
    await befriend(h1, a, b)  # type: ignore[arg-type]
    gid = await make_group(h1, a, b)  # type: ignore[arg-type]
    sa = await connect(h1, a, autosync=0)  # type: ignore[arg-type]
    sb = await connect(h2, b, autosync=0)  # type: ignore[arg-type]
    n = 25  # 2n frames back to back: within a connection's burst allowance (IMHUB_SEND_BURST)

    async def burst(sock: Socket, me: User, peer: User) -> dict[str, int]:
        for i in range(n):
            await sock.send(cmd=10, dstid=peer.id, media=1, content=f"{i}", cid=f"{me.id}-p{i}")
            await sock.send(cmd=11, dstid=gid, media=1, content=f"{i}", cid=f"{me.id}-g{i}")
        acked: dict[str, int] = {}
        while len(acked) < 2 * n:
            f = await sock.recv_until(lambda f: f.get("cmd") in (1, 2), timeout=20)
            assert f["cmd"] == 1, f
            acked[f["cid"]] = f["seq"]
        return acked

    acks_a, acks_b = await asyncio.gather(burst(sa, a, b), burst(sb, b, a))
    msgs = await sync_all(sa, {pconv(a, b): 0, f"g{gid}": 0})
    by_conv: dict[str, list[dict[str, Any]]] = {}
    for m in msgs:
        by_conv.setdefault(m["conv"], []).append(m)
    for conv, ms in by_conv.items():
        seqs = sorted(m["seq"] for m in ms)
        assert seqs == list(range(1, len(seqs) + 1)), f"{conv}: gaps or repeats"
        cids = [m["cid"] for m in ms if m.get("cid")]
        assert len(cids) == len(set(cids))
    assert len(by_conv[pconv(a, b)]) == 2 * n
    assert len(by_conv[f"g{gid}"]) >= 2 * n  # plus group events (joins)
    stored = {m["cid"]: m["seq"] for m in msgs if m.get("cid")}
    assert {**acks_a, **acks_b}.items() <= stored.items()
    await sa.close()
    await sb.close()


async def test_redis_outage_loses_no_acked_message_and_clients_resync(cluster: Cluster) -> None:
    h1, h2 = cluster.http
    a, b = await make_user(h1), await make_user(h2)  # type: ignore[arg-type]
    await befriend(h1, a, b)  # type: ignore[arg-type]
    sa = await connect(h1, a, autosync=0)  # type: ignore[arg-type]
    sb = await connect(h2, b, autosync=0)  # type: ignore[arg-type]
    conv = pconv(a, b)
    acked: dict[str, int] = {}

    async def send(i: int) -> None:
        await sa.send(cmd=10, dstid=b.id, media=1, content=f"m{i}", cid=f"c{i}")
        f = await sa.reply(timeout=10)
        assert f["cmd"] == 1, f
        acked[f["cid"]] = f["seq"]

    for i in range(5):
        await send(i)
    for _ in range(5):
        await sb.recv_until(is_msg)

    cluster.redis.kill()
    for i in range(5, 15):  # acked during the outage: stored, not published
        await send(i)
    cluster.redis.start()

    for s in (sa, sb):
        f = await s.recv_until(lambda f: f.get("cmd") == 37, timeout=15)
        assert f["reason"] == "bus_reconnected"
    for i in range(15, 20):  # live again once resubscribed
        await send(i)
    live = []
    while len(live) < 5:
        m = await sb.recv_until(is_msg, timeout=10)
        if m["cid"] in {f"c{i}" for i in range(15, 20)}:
            live.append(m["cid"])

    stored = {m["cid"]: m["seq"] for m in await sync_all(sb, {conv: 0})}
    assert acked.items() <= stored.items()
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))
    # Presence comes back after the restart emptied Redis (refreshed claims).
    await sa.close()
    await sb.close()


async def test_message_updates_cross_nodes_and_reach_an_offline_device_by_sync(cluster: Cluster) -> None:
    """Issue #19: replies, edits, reactions, pins (the group's stream) and delete-for-me
    and conversation settings (the user's own stream) reach devices on the other node
    live, through Redis, and a device that was offline by sync."""
    h1, h2 = cluster.http
    owner, member = await make_user(h1), await make_user(h2)  # type: ignore[arg-type]
    gid = await make_group(h1, owner, member)  # type: ignore[arg-type]
    conv = f"g{gid}"
    o1 = await connect(h1, owner, autosync=0)  # type: ignore[arg-type]
    o2 = await connect(h2, owner, autosync=0)  # type: ignore[arg-type]  # owner's second device, other node
    m2 = await connect(h2, member, autosync=0)  # type: ignore[arg-type]
    offline = await connect(h1, member, autosync=0)  # type: ignore[arg-type]
    await offline.send(cmd=21, rid="c0")
    own = (await offline.recv_until(lambda f: f.get("cmd") == 31))["own"]
    await offline.close()

    await o1.send(cmd=11, dstid=gid, media=1, content="first draft", cid="u1")
    sent = await o1.reply()
    await m2.send(cmd=11, dstid=gid, media=1, content="agreed", cid="u2", reply_to=sent["id"])
    reply = await m2.reply()
    got = await o1.recv_until(lambda f: is_msg(f) and f["id"] == reply["id"])
    assert got["reply"]["excerpt"] == "first draft"

    def update(kind: str) -> Any:
        return lambda f: f.get("media") == 11 and f.get("memo") == kind

    await o1.send(cmd=50, rid="e", id=sent["id"], content="final text")
    await o1.recv_until(lambda f: f.get("cmd") == 43)
    for s in (o2, m2):
        assert (await s.recv_until(update("edited")))["update"]["content"] == "final text"
    await m2.send(cmd=51, rid="r", id=sent["id"], emoji="👍")
    await m2.recv_until(lambda f: f.get("cmd") == 43)
    for s in (o1, o2, m2):
        assert (await s.recv_until(update("reactions")))["update"]["reactions"][0]["users"] == [member.id]
    await o2.send(cmd=53, rid="p", id=sent["id"])
    await o2.recv_until(lambda f: f.get("cmd") == 43)
    for s in (o1, m2):
        assert (await s.recv_until(update("pinned")))["update"]["pins"] == [sent["id"]]
    await o1.send(cmd=52, rid="h", ids=[reply["id"]])
    await o1.recv_until(lambda f: f.get("cmd") == 43)
    assert (await o2.recv_until(update("hidden")))["update"]["ids"] == [reply["id"]]
    await m2.send(cmd=54, rid="s", conv=conv, muted=True)
    await m2.recv_until(lambda f: f.get("cmd") == 43)

    back = await connect(h1, member, autosync=0)  # type: ignore[arg-type]
    synced = await sync_all(back, {conv: reply["seq"], own["conv"]: own["last_seq"]})
    assert [m["memo"] for m in synced if m["conv"] == conv] == ["edited", "reactions", "pinned"]
    assert [m["update"] for m in synced if m["conv"] == own["conv"]] == [
        {"conv": conv, "pinned": False, "muted": True}]
    rows = await api(h1, "/message/history", owner, conv=conv)  # type: ignore[arg-type]
    assert [m["id"] for m in rows["rows"] if m["media"] == 1] == [sent["id"]]  # the reply is hidden for the owner
    for s in (o1, o2, m2, back):
        await s.close()


async def left_node(sock: Socket) -> None:
    """Close ``sock`` and give its node a moment to stop watching the user's topics."""
    await sock.close()
    await asyncio.sleep(0.3)


@SHARDS
async def test_removal_reaches_a_node_that_cached_the_membership(cluster: Cluster) -> None:
    """Node 0 has checked b's membership (b sent there, and a); both leave node 0, and
    b is removed through node 1 while connected only there. Node 0 holds no socket of b
    nor of any member when the removal is published, yet when b comes back to node 0
    it must not send to, hear from or read past its removal from the group."""
    h1, h2 = cluster.http
    owner, a, b = await make_user(h1), await make_user(h1), await make_user(h1)  # type: ignore[arg-type]
    gid = await make_group(h1, owner, a, b)  # type: ignore[arg-type]
    sa = await connect(h1, a, autosync=0)  # type: ignore[arg-type]
    sb = await connect(h1, b, autosync=0)  # type: ignore[arg-type]
    await sb.send(cmd=11, dstid=gid, media=1, content="b was here", cid="b1")
    assert (await sb.reply())["cmd"] == 1
    await left_node(sb)
    await sa.send(cmd=11, dstid=gid, media=1, content="a on node 0", cid="a1")
    assert (await sa.reply())["cmd"] == 1
    await left_node(sa)  # node 0 now watches neither b nor (with shards) the group

    sb2 = await connect(h2, b, autosync=0)  # type: ignore[arg-type]
    # Node 1 gets a baseline for the group first: else the "removed" event waits for
    # it in the sequencer while the leave stops routing the group to b.
    await sb2.send(cmd=11, dstid=gid, media=1, content="b on node 1", cid="b3")
    assert (await sb2.reply())["cmd"] == 1
    await asyncio.sleep(0.3)
    removed = await api(h2, "/contact/removemember", owner, dstid=gid, memberid=b.id)  # type: ignore[arg-type]
    assert removed["code"] == 0, removed
    await sb2.recv_until(lambda f: f.get("media") == 10 and f.get("content") == "removed", timeout=5)
    await left_node(sb2)

    sb = await connect(h1, b, autosync=0)  # type: ignore[arg-type]
    sa = await connect(h1, a, autosync=0)  # type: ignore[arg-type]
    await sb.send(cmd=11, dstid=gid, media=1, content="still in?", cid="b2")
    assert (await sb.reply()).get("error") == "not_member"
    await sb.send(cmd=26, conv=f"g{gid}")
    receipts = await sb.recv_until(lambda f: f.get("cmd") in (2, 38), timeout=5)
    assert receipts.get("error") == "not_in_conversation"
    await sa.send(cmd=11, dstid=gid, media=1, content="after removal", cid="a2")
    assert (await sa.reply())["cmd"] == 1
    await sb.send(cmd=22, rid="h1", conv=f"g{gid}", limit=50)
    page = await sb.recv_until(lambda f: f.get("cmd") in (2, 32), timeout=5)
    shown = [m["content"] for m in page.get("msgs", [])]
    assert "b was here" in shown and "after removal" not in shown
    frames = await drain(sb, 0.5)
    assert not [f for f in sb.frames + frames if f.get("content") in ("after removal", "still in?")]
    await sa.close()
    await sb.close()


@SHARDS
async def test_unfriending_reaches_a_node_that_cached_the_friendship(cluster: Cluster) -> None:
    """Node 0 found a and b friends (a sent there); a leaves node 0, and b unfriends a
    through node 1 while neither has a socket on node 0. When a comes back to node 0
    (well within the friend cache's lifetime) the friendship must be gone there too."""
    h1, h2 = cluster.http
    a, b = await make_user(h1), await make_user(h1)  # type: ignore[arg-type]
    await befriend(h1, a, b)  # type: ignore[arg-type]
    sa = await connect(h1, a, autosync=0)  # type: ignore[arg-type]
    await sa.send(cmd=10, dstid=b.id, media=1, content="hi", cid="f1")
    assert (await sa.reply())["cmd"] == 1
    await left_node(sa)
    assert (await api(h2, "/contact/delfriend", b, dstid=a.id))["code"] == 0  # type: ignore[arg-type]
    await asyncio.sleep(0.5)  # the unfriended envelope crosses Redis
    sa = await connect(h1, a, autosync=0)  # type: ignore[arg-type]
    await sa.send(cmd=10, dstid=b.id, media=1, content="still there?", cid="f2")
    assert (await sa.reply()).get("error") == "not_friend"
    await sa.close()
