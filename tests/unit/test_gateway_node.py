"""The message path in one process, without sockets: the messaging service on the
local bus, the gateway node and its hub, with fake transports standing in for
sockets. Real SQLite store underneath."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from imhub.app import build_services
from imhub.bus.base import Delivery, Membership, Missed, Unfriended
from imhub.config import Settings
from imhub.domain.model import Cmd, Draft, Media
from imhub.errors import ErrorCode, Refused
from imhub.gateway.connection import Connection
from imhub.protocol.wsframe import text_frame
from imhub.store.handshake import Opening
from imhub.store.migrate import migrate
from imhub.web.context import Services


@dataclass
class FakeTransport:
    writes: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def frames(self) -> list[dict[str, object]]:
        """Every JSON frame written (the writes are unmasked server text frames)."""
        data = b"".join(self.writes)
        out, pos = [], 0
        while pos < len(data):
            n = data[pos + 1]
            pos += 2
            if n == 126:
                n = int.from_bytes(data[pos:pos + 2], "big")
                pos += 2
            out.append(orjson.loads(data[pos:pos + n]))
            pos += n
        return out


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", sync_page_size=3)
    await migrate(settings.effective_database_url)
    s = build_services(settings)
    await s.presence.start()
    await s.node.start()
    s.messaging.start()
    yield s
    await s.messaging.stop()
    await s.node.stop()
    await s.presence.close()
    await s.db.dispose()


async def user(svc: Services, n: int) -> int:
    return (await svc.users.create(mobile=f"1390000{n:04d}", passwd_hash="h")).id


async def connect(svc: Services, user_id: int, seed: bool = False) -> tuple[Connection, FakeTransport]:
    t = FakeTransport()
    conn = Connection(user_id, t, lambda code, reason: None, 1 << 20, asyncio.get_running_loop(), seed=seed)
    await svc.node.connect(conn, Opening(user_id, await svc.social_store.group_ids_of(user_id),
                                         await svc.social_store.friend_ids(user_id)))
    return conn, t


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


def text(sender: int, to: int, body: str, cid: str, cmd: int = Cmd.PRIVATE) -> Draft:
    return Draft(userid=sender, cmd=cmd, dstid=to, media=Media.TEXT, content=body, cid=cid)


async def test_send_acks_the_sender_delivers_to_the_peer_and_receipts_back(svc: Services) -> None:
    a, b = await user(svc, 1), await user(svc, 2)
    await svc.social_store.add_friendship(a, b)
    conn_a, ta = await connect(svc, a)
    _, ta2 = await connect(svc, a)  # a second tab of the sender
    _, tb = await connect(svc, b)
    await settle()
    ta.writes.clear()
    await svc.messaging.send(conn_a, text(a, b, "hi", "c1"))
    await settle()
    sender = ta.frames()
    assert sender[0]["cmd"] == Cmd.ACK and sender[0]["cid"] == "c1"  # the ack first
    assert not any(f.get("content") == "hi" for f in sender)  # no echo to the origin socket
    assert any(f.get("content") == "hi" for f in ta2.frames())  # but the other tab gets it
    assert [f["content"] for f in tb.frames() if f.get("cmd") == Cmd.PRIVATE] == ["hi"]
    assert {"cmd": Cmd.RECEIPT, "conv": f"p{min(a, b)}_{max(a, b)}", "userid": b, "delivered_seq": 1} in sender


async def test_a_resent_cid_is_acked_as_duplicate_and_not_delivered_again(svc: Services) -> None:
    a, b = await user(svc, 1), await user(svc, 2)
    await svc.social_store.add_friendship(a, b)
    conn_a, ta = await connect(svc, a)
    _, tb = await connect(svc, b)
    await svc.messaging.send(conn_a, text(a, b, "once", "same"))
    await settle()
    await svc.messaging.send(conn_a, text(a, b, "once", "same"))
    await settle()
    acks = [f for f in ta.frames() if f.get("cmd") == Cmd.ACK]
    assert [bool(f.get("dup")) for f in acks] == [False, True]
    assert [f["content"] for f in tb.frames() if f.get("cmd") == Cmd.PRIVATE] == ["once"]


async def test_refusals_are_domain_errors_and_queue_nothing(svc: Services) -> None:
    a, b = await user(svc, 1), await user(svc, 2)
    conn_a, _ = await connect(svc, a)
    with pytest.raises(Refused) as not_friend:
        await svc.messaging.send(conn_a, text(a, b, "hi", "c1"))
    assert not_friend.value.code is ErrorCode.NOT_FRIEND
    with pytest.raises(Refused) as unknown:
        await svc.messaging.send(conn_a, text(a, 999, "hi", "c2"))
    assert unknown.value.code is ErrorCode.UNKNOWN_TARGET
    assert svc.messaging.pending_work() == 0


async def test_unfriended_control_evicts_the_cached_friendship(svc: Services) -> None:
    a, b = await user(svc, 1), await user(svc, 2)
    await svc.social_store.add_friendship(a, b)
    conn_a, _ = await connect(svc, a)  # the handshake primed the friendship cache
    await svc.social_store.remove_friendship(a, b)
    await svc.messaging.send(conn_a, text(a, b, "still cached", "c1"))  # the cache answers
    await svc.bus.publish(Unfriended(a, b))
    with pytest.raises(Refused) as refused:
        await svc.messaging.send(conn_a, text(a, b, "now refused", "c2"))
    assert refused.value.code is ErrorCode.NOT_FRIEND


async def test_membership_control_starts_and_stops_routing_a_group(svc: Services) -> None:
    owner, other = await user(svc, 1), await user(svc, 2)
    group = await svc.social_store.create_group(ownerid=owner, name="g")
    gid = group.id
    conn_o, _ = await connect(svc, owner)
    _, t_other = await connect(svc, other)  # connected before joining
    await svc.social_store.add_member(gid, other)
    await svc.bus.publish(Membership(other, gid, True))
    await svc.messaging.send(conn_o, text(owner, gid, "welcome", "g1", Cmd.GROUP))
    await settle()
    assert [f["content"] for f in t_other.frames() if f.get("cmd") == Cmd.GROUP] == ["welcome"]
    await svc.social_store.remove_member(gid, other)
    await svc.bus.publish(Membership(other, gid, False))
    await svc.messaging.send(conn_o, text(owner, gid, "bye", "g2", Cmd.GROUP))
    await settle()
    assert [f["content"] for f in t_other.frames() if f.get("cmd") == Cmd.GROUP] == ["welcome"]


async def test_a_late_copy_of_an_older_membership_change_is_ignored(svc: Services) -> None:
    """With Redis shards a join travels on the user's and the group's channels, a
    leave on the group's: a join held up on a failed shard can arrive after a later
    leave. Membership controls carry their time; an older one than the last applied
    for that user and group changes nothing."""
    owner, other = await user(svc, 1), await user(svc, 2)
    gid = (await svc.social_store.create_group(ownerid=owner, name="g")).id
    conn_o, _ = await connect(svc, owner)
    _, t_other = await connect(svc, other)
    await svc.bus.publish(Membership(other, gid, True, 1000))
    await svc.bus.publish(Membership(other, gid, False, 2000))
    await svc.bus.publish(Membership(other, gid, True, 1000))  # the late copy
    await svc.messaging.send(conn_o, text(owner, gid, "after the leave", "g1", Cmd.GROUP))
    await settle()
    assert [f for f in t_other.frames() if f.get("cmd") == Cmd.GROUP] == []
    await svc.social_store.add_member(gid, other)
    await svc.bus.publish(Membership(other, gid, True, 3000))  # a real rejoin
    await svc.messaging.send(conn_o, text(owner, gid, "welcome back", "g2", Cmd.GROUP))
    await settle()
    assert [f["content"] for f in t_other.frames() if f.get("cmd") == Cmd.GROUP] == ["welcome back"]


async def test_frames_held_during_catch_up_follow_the_backlog_without_repeats(svc: Services) -> None:
    a = await user(svc, 1)
    t = FakeTransport()
    conn = Connection(a, t, lambda code, reason: None, 1 << 20, asyncio.get_running_loop())
    conn.catching_up = True
    frame = text_frame(b'{"cmd":10,"conv":"p1_2","seq":2}')
    conn.push(text_frame(b'{"cmd":10,"conv":"p1_2","seq":1}'), "p1_2", 1)  # also in the backlog
    conn.push(frame, "p1_2", 2)
    await settle()
    assert t.writes == []  # nothing live before the backlog
    conn.write_backlog([text_frame(b'{"cmd":10,"conv":"p1_2","seq":1}')], "p1_2", 1)
    assert conn.finish_catch_up() == [("p1_2", 2, 0)]  # only the one the backlog lacked
    await settle()
    assert [f["seq"] for f in t.frames()] == [1, 2]
    # A live copy of a message the backlog wrote (fanned out after the backlog read it).
    assert not conn.push(text_frame(b'{"cmd":10,"conv":"p1_2","seq":1}'), "p1_2", 1)


async def test_hub_skips_only_the_origin_socket_of_its_own_node(svc: Services) -> None:
    a = await user(svc, 1)
    conn, t = await connect(svc, a)
    hub = svc.node.hub
    hub.deliver(Delivery(text_frame(b'{"n":1}'), (a,), origin=conn.id, node=svc.node.node_id))
    hub.deliver(Delivery(text_frame(b'{"n":2}'), (a,), origin=conn.id, node="another-node"))
    await settle()
    assert [f["n"] for f in t.frames()] == [2]


# --- seed clients and the autosync backlog (issue #15) ----------------------------------


async def test_a_seed_connection_gets_only_chat_messages_it_can_draw(svc: Services) -> None:
    a, b = await user(svc, 1), await user(svc, 2)
    await svc.social_store.add_friendship(a, b)
    _, seed_t = await connect(svc, b, seed=True)
    conn_a, _ = await connect(svc, a)  # presence of a reaches b's friends: not the seed socket
    await svc.messaging.send(conn_a, text(a, b, "plain", "c1"))
    link = Draft(userid=a, cmd=Cmd.PRIVATE, dstid=b, media=Media.LINK, content="Docs", url="https://x.test/d",
                 cid="c2")
    await svc.messaging.send(conn_a, link)
    await settle()
    await svc.messaging.mark_read(a, f"p{min(a, b)}_{max(a, b)}", 2)  # a receipt event
    await svc.messaging.typing(a, f"p{min(a, b)}_{max(a, b)}")
    await settle()
    got = seed_t.frames()
    assert [(f["cmd"], f["media"], f["content"], f["userid"]) for f in got] == [
        (Cmd.PRIVATE, Media.TEXT, "plain", a),
        (Cmd.PRIVATE, Media.TEXT, "[link] Docs https://x.test/d", a),
    ]


async def test_seed_connection_sending_without_cid_gets_no_ack_or_error(svc: Services) -> None:
    a, b = await user(svc, 1), await user(svc, 2)
    await svc.social_store.add_friendship(a, b)
    conn, t = await connect(svc, a, seed=True)
    await svc.messaging.send(conn, Draft(userid=a, cmd=Cmd.PRIVATE, dstid=b, media=Media.TEXT, content="x"))
    await settle()
    assert t.frames() == []  # stored (b gets it), but nothing the seed client would draw
    conn.failed(Refused(ErrorCode.INTERNAL, "x"))
    await settle()
    assert t.frames() == []


async def test_autosync_pushes_every_missed_message_page_by_page(svc: Services) -> None:
    a, b, c = await user(svc, 1), await user(svc, 2), await user(svc, 3)
    await svc.social_store.add_friendship(a, b)
    await svc.social_store.add_friendship(c, b)
    sender_a, ta = await connect(svc, a)
    sender_c, _ = await connect(svc, c)
    for n in range(8):  # b is offline; the page size is 3
        await svc.messaging.send(sender_a, text(a, b, f"a{n}", f"a{n}"))
        await svc.messaging.send(sender_c, text(c, b, f"c{n}", f"c{n}"))
    await settle()
    ta.writes.clear()
    conn_b, tb = await connect(svc, b, seed=True)
    await svc.node.push_backlog(conn_b)
    await settle()
    got = [f["content"] for f in tb.frames()]
    assert sorted(got) == sorted([f"a{n}" for n in range(8)] + [f"c{n}" for n in range(8)])
    assert [x for x in got if x.startswith("a")] == [f"a{n}" for n in range(8)]  # in order, once
    assert [x for x in got if x.startswith("c")] == [f"c{n}" for n in range(8)]
    receipts = [f["delivered_seq"] for f in ta.frames() if f.get("cmd") == Cmd.RECEIPT]
    assert max(receipts) == 8
    await svc.node.flush_cursors()
    listed = {c["conv"]: c for c in await svc.conversations.conversations(b)}
    assert listed[f"p{min(a, b)}_{max(a, b)}"]["delivered_seq"] == 8


async def test_a_held_frame_gets_no_delivered_receipt_until_it_is_written(svc: Services) -> None:
    a, b = await user(svc, 1), await user(svc, 2)
    await svc.social_store.add_friendship(a, b)
    conn_a, ta = await connect(svc, a)
    conn_b, tb = await connect(svc, b)
    await settle()
    ta.writes.clear()
    conn_b.catching_up = True  # as during an autosync
    await svc.messaging.send(conn_a, text(a, b, "live", "l1"))
    await settle()
    assert not any(f.get("cmd") == Cmd.RECEIPT for f in ta.frames())
    assert tb.frames() == [] or all(f.get("cmd") != Cmd.PRIVATE for f in tb.frames())
    await svc.node.push_backlog(conn_b)  # the backlog has it: written once, then receipted
    await settle()
    assert [f["content"] for f in tb.frames() if f.get("cmd") == Cmd.PRIVATE] == ["live"]
    assert [f["delivered_seq"] for f in ta.frames() if f.get("cmd") == Cmd.RECEIPT] == [1]


async def test_a_shard_outage_resyncs_only_the_users_and_groups_it_carried(svc: Services) -> None:
    """Several Redis shards: one came back after an outage (Missed names what it
    carried here). Its users, and the members here of its groups, get cmd 37; everyone
    else kept receiving through the other shards and is left alone. A whole-bus outage
    (None) still tells everyone."""
    a, b, c, d = [await user(svc, n) for n in range(1, 5)]
    ta, tb, tc, td = [(await connect(svc, u))[1] for u in (a, b, c, d)]
    for t in (ta, tb, tc, td):
        t.writes.clear()
    svc.node.hub.join(77, c)  # c is a member of group 77 here
    svc.node._bus_reconnected(Missed(frozenset({a}), frozenset({77})))
    await settle()

    def resyncs(t: FakeTransport) -> int:
        return sum(1 for f in t.frames() if f.get("cmd") == Cmd.RESYNC)

    assert [resyncs(t) for t in (ta, tb, tc, td)] == [1, 0, 1, 0]
    svc.node._bus_reconnected(None)
    await settle()
    assert [resyncs(t) for t in (ta, tb, tc, td)] == [2, 1, 2, 1]


async def test_a_bus_outage_forgets_cached_authorizations(svc: Services) -> None:
    """An unfriending or a leave published during the outage is lost: what the caches
    trusted is read again after it."""
    a, b = await user(svc, 1), await user(svc, 2)
    await svc.social_store.add_friendship(a, b)
    group = await svc.social_store.create_group(ownerid=b, name="g")
    await svc.social_store.add_member(group.id, a)
    conn_a, _ = await connect(svc, a)  # the handshake primed both caches
    await svc.social_store.remove_friendship(a, b)
    await svc.social_store.remove_member(group.id, a)
    await svc.messaging.send(conn_a, text(a, b, "still cached", "c1"))
    svc.node._bus_reconnected(Missed(frozenset({b}), frozenset()))
    with pytest.raises(Refused) as not_friend:
        await svc.messaging.send(conn_a, text(a, b, "now refused", "c2"))
    assert not_friend.value.code is ErrorCode.NOT_FRIEND
    with pytest.raises(Refused) as not_member:
        await svc.messaging.send(conn_a, text(a, group.id, "no longer", "c3", Cmd.GROUP))
    assert not_member.value.code is ErrorCode.NOT_MEMBER


async def test_last_seen_of_many_disconnects_is_saved_in_one_flush(svc: Services) -> None:
    """Disconnects queue the users' last-seen times; the periodic flush (and the node's
    stop) saves them all in one statement instead of a write per disconnect."""
    uids = [await user(svc, 700 + i) for i in range(5)]
    conns = [(await connect(svc, uid))[0] for uid in uids]
    for conn in conns:
        conn.closed = True
        svc.node.disconnect(conn)
    for _ in range(100):  # the offline tasks: a few loop turns
        if not svc.node.pending_work():
            break
        await asyncio.sleep(0)
    assert {(await svc.users.get(uid)).last_seen for uid in uids} == {0}  # not yet saved
    await svc.node.flush_last_seen()
    seen = [(await svc.users.get(uid)).last_seen for uid in uids]
    assert all(t > 0 for t in seen)


def presence_frames(t: FakeTransport) -> list[tuple[int, bool]]:
    return [(int(f["userid"]), bool(f["online"])) for f in t.frames() if f.get("cmd") == Cmd.PRESENCE]


async def wait_offline_work(svc: Services) -> None:
    for _ in range(200):  # the offline tasks: a few loop turns and a read
        if not svc.node.pending_work():
            break
        await asyncio.sleep(0.005)
    await settle()


async def test_users_going_offline_together_reach_every_friend_once_with_one_read(svc: Services) -> None:
    """A reconnect storm disconnects everyone at once: the friends of all the users
    going offline are read together (one read, not a reader-thread hop per user), and
    every friend still online gets each offline notice exactly once."""
    leaving = [await user(svc, 800 + i) for i in range(6)]
    staying = [await user(svc, 900 + i) for i in range(3)]
    for i, uid in enumerate(leaving):  # each leaver has one or two of the stayers as friends
        await svc.social_store.add_friendship(uid, staying[i % 3])
        if i % 2:
            await svc.social_store.add_friendship(uid, staying[(i + 1) % 3])
    conns = [(await connect(svc, uid))[0] for uid in leaving]
    watchers = [(await connect(svc, uid))[1] for uid in staying]
    await settle()
    for t in watchers:
        t.writes.clear()
    reads = 0
    db = svc.social_store.db
    read_rows = db.read_rows

    async def counting(*args: object) -> object:
        nonlocal reads
        reads += 1
        return await read_rows(*args)

    db.read_rows = counting  # type: ignore[method-assign]
    for conn in conns:
        conn.closed = True
        svc.node.disconnect(conn)
    await wait_offline_work(svc)
    assert reads == 1
    for k, t in enumerate(watchers):
        friends = [uid for i, uid in enumerate(leaving) if i % 3 == k or (i % 2 and (i + 1) % 3 == k)]
        assert sorted(presence_frames(t)) == sorted((uid, False) for uid in friends)


async def test_a_friend_added_after_connect_gets_the_offline_notice(svc: Services) -> None:
    """The offline announcement reads the friends when the user leaves, not the list
    the handshake read: a friendship made meanwhile is told too."""
    a, b = await user(svc, 1), await user(svc, 2)
    conn_a, _ = await connect(svc, a)
    _, tb = await connect(svc, b)
    await svc.social_store.add_friendship(a, b)
    await settle()
    conn_a.closed = True
    svc.node.disconnect(conn_a)
    await wait_offline_work(svc)
    assert presence_frames(tb) == [(a, False)]
