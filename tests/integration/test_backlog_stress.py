"""The offline backlog under reconnects (issue #15): nothing lost, nothing twice, in
order, for the seed mode (autosync pushes everything missed on connect) and the
modern mode (``v=2&autosync=0`` and cmd 20 from the last seen seqs), and for the big
backlog also a modern client that asks for the push (``v=2``, autosync on); and a 'delivered'
receipt only for a message the recipient's socket was given.

(a) 50 recipients reconnect (some reload twice in a row, closing mid-catch-up) while
their friends and groups send, round after round; (b) one recipient comes back to
more than 1,000 messages in five conversations, far beyond ``IMHUB_SYNC_PAGE_SIZE``.

Every socket is closed with the close handshake and every frame that arrived before
the server's close reply is counted (tests/integration/seedclient.close_reading): the
server counts what it wrote as delivered, so the test must not drop any of it.

``IMHUB_STRESS_ROUNDS=200 pytest tests/integration/test_backlog_stress.py -m slow`` is
the long variant.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from imhub.app import build_app
from imhub.config import Settings
from imhub.store.migrate import migrate
from tests.integration.chatkit import User, api, make_user
from tests.integration.seedclient import close_reading

RECIPIENTS = 50
GROUP_SIZE = 5  # recipients (and as many senders) per group
ROUNDS = 20
LONG_ROUNDS = int(os.environ.get("IMHUB_STRESS_ROUNDS", "0"))
PAGE_SIZE = 50
BIG_BACKLOG_PER_FRIEND = 210  # x 4 friends, + 4 x 60 in the group: 1,080 missed
SETTLE_SECONDS = 20.0
ENV = {
    "IMHUB_FRIEND_POLICY": "open",
    "IMHUB_GROUP_JOIN_POLICY": "open",
    "IMHUB_SYNC_PAGE_SIZE": str(PAGE_SIZE),
    "IMHUB_SEND_RATE_PER_SECOND": "100000",
    "IMHUB_SEND_BURST": "100000",
    "IMHUB_MAX_CONNECTIONS_PER_IP": "0",
}
MODES = ["seed", "modern"]
PUSHED = ("seed", "autosync")  # the modes whose backlog the server pushes
_rids = itertools.count(1)


@pytest.fixture
async def hub(tmp_path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TestClient]:
    """An in-process imhub (fresh SQLite) with a small sync page and no send limits."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    # Every user registers and logs in from 127.0.0.1, many at once: lift the
    # per-address registration and concurrent-login limits (they have tests of their own).
    settings = Settings(
        data_dir=tmp_path / "data", register_max_per_ip=10_000, login_in_flight_per_ip=10_000,
        login_max_accounts_per_ip=10_000,
    )
    assert settings.sync_page_size == PAGE_SIZE
    await migrate(settings.effective_database_url)
    async with TestClient(TestServer(build_app(settings))) as client:
        yield client


async def befriend(http: Any, a: User, b: User) -> None:
    """Friends at once: the servers here run IMHUB_FRIEND_POLICY=open (the seed's way)."""
    body = await api(http, "/contact/addfriend", a, userid=a.id, dstid=b.id)
    assert body["code"] == 0 and "request" not in body["data"], body


def private_conv(a: int, b: int) -> str:
    return f"p{min(a, b)}_{max(a, b)}"


Key = tuple[str, int]  # (conv, seq)


@dataclass
class Ledger:
    """Every acknowledged message: its unique content -> (conv, seq)."""

    by_content: dict[str, Key] = field(default_factory=dict)

    def of_convs(self, convs: set[str]) -> set[Key]:
        return {k for k in self.by_content.values() if k[0] in convs}


class Sender:
    """A modern client that sends with a cid, waits for the ack, keeps the receipts."""

    def __init__(self, http: TestClient, user: User, ledger: Ledger) -> None:
        self.http, self.user, self.ledger = http, user, ledger
        self.acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.receipts: list[dict[str, Any]] = []
        self.serial = itertools.count(1)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        params = {"id": str(self.user.id), "token": self.user.token, "v": "2", "autosync": "0"}
        self.ws = await self.http.ws_connect("/chat", params=params)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            f = orjson.loads(msg.data)
            cmd = f.get("cmd")
            if cmd in (1, 2) and f.get("cid") in self.acks:
                fut = self.acks.pop(f["cid"])
                if not fut.done():
                    fut.set_result(f)
            elif cmd == 33 and "delivered_seq" in f:
                self.receipts.append(f)

    async def send(self, cmd: int, dstid: int, n: int = 1) -> None:
        """Send ``n`` text messages at once (pipelined) and wait for every ack."""
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        pending = []
        for _ in range(n):
            content = f"u{self.user.id}-{next(self.serial)}"
            fut = self.acks[content] = loop.create_future()
            pending.append((content, fut))
            await self.ws.send_str(orjson.dumps(
                {"cmd": cmd, "dstid": dstid, "media": 1, "content": content, "cid": content}).decode())
        for content, fut in pending:
            ack = await asyncio.wait_for(fut, 30)
            assert ack["cmd"] == 1, ack
            self.ledger.by_content[content] = (ack["conv"], ack["seq"])

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            await self.task


@dataclass
class Got:
    """One chat frame as a recipient got it."""

    conn: int  # which of the recipient's connections
    source: str  # "push" (any frame the server sent on its own) or "sync" (a cmd 30 page)
    content: str
    conv: str
    seq: int


class Recipient:
    """A client that comes and goes: ``seed`` (no ``v``: the server pushes the backlog)
    or ``modern`` (``v=2&autosync=0``, then cmd 20 from the last seen seqs), or
    ``autosync`` (``v=2``, the server pushes the backlog: no cmd 20)."""

    def __init__(self, http: TestClient, user: User, mode: str) -> None:
        self.http, self.user, self.mode = http, user, mode
        self.convs: set[str] = set()
        self.got: list[Got] = []
        self.other: list[dict[str, Any]] = []  # seed mode: frames that are not chat messages
        self.seqs: dict[str, set[int]] = {}  # every seq seen per conversation (events too)
        self.mark: dict[str, int] = {}  # per conversation: every seq up to this one seen
        self.conns = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.syncer: asyncio.Task[None] | None = None
        self.pages: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.sync_errors: list[str] = []

    async def connect(self) -> None:
        params = {"id": str(self.user.id), "token": self.user.token}
        if self.mode == "modern":
            params |= {"v": "2", "autosync": "0"}
        elif self.mode == "autosync":
            params |= {"v": "2"}
        self.ws = await self.http.ws_connect("/chat", params=params)
        self.conns += 1
        conn = self.conns
        self.reader = asyncio.create_task(self._read(self.ws, conn))
        if self.mode == "modern":
            self.syncer = asyncio.create_task(self._sync(self.ws))

    async def disconnect(self) -> None:
        ws, conn = self.ws, self.conns
        assert ws is not None
        if self.syncer is not None:
            self.syncer.cancel()
        await close_reading(ws, lambda data: self.on_text(data, conn))
        assert self.reader is not None
        await self.reader
        if self.syncer is not None:
            await asyncio.gather(self.syncer, return_exceptions=True)
        self.ws = self.reader = self.syncer = None
        for fut in self.pages.values():
            fut.cancel()
        self.pages.clear()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, conn: int) -> None:
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            self.on_text(msg.data, conn)

    def on_text(self, data: str, conn: int) -> None:
        f = orjson.loads(data)
        cmd = f.get("cmd")
        if cmd == 30 and f.get("rid") in self.pages:
            for m in f.get("msgs") or []:
                self._note(m, conn, "sync")
            self.pages.pop(f["rid"]).set_result(f)
        elif cmd in (10, 11) and f.get("media") != 10:
            self._note(f, conn, "push")
        elif self.mode == "seed":
            self.other.append(f)

    def _note(self, f: dict[str, Any], conn: int, source: str) -> None:
        conv = f.get("conv") or (f"g{f['dstid']}" if f["cmd"] == 11 else private_conv(f["userid"], f["dstid"]))
        seq = int(f.get("seq") or 0)
        seen = self.seqs.setdefault(conv, set())
        seen.add(seq)
        mark = self.mark.get(conv, 0)
        while mark + 1 in seen:
            mark += 1
        self.mark[conv] = mark
        if f.get("media") != 10:  # a group event (sync pages carry them) is not counted
            self.got.append(Got(conn, source, str(f.get("content")), conv, seq))

    async def _sync(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """The modern client's catch-up: cmd 20 from the last seen seqs (up to the first
        gap: a live frame may have come before the page that fills the gap), page by page."""
        after = {conv: self.mark.get(conv, 0) for conv in self.convs}
        loop = asyncio.get_running_loop()
        while True:
            rid = f"s{next(_rids)}"
            fut = self.pages[rid] = loop.create_future()
            await ws.send_str(orjson.dumps({"cmd": 20, "rid": rid, "after": after, "limit": PAGE_SIZE}).decode())
            page = await asyncio.wait_for(fut, 30)
            if page.get("denied"):
                self.sync_errors.append(f"denied {page['denied']}")
            if not page.get("more"):
                return
            after = page["after"]

    async def sync_done(self) -> None:
        if self.syncer is not None:
            await self.syncer


@dataclass
class Verdict:
    lost: dict[int, list[Key]] = field(default_factory=dict)
    duplicated: dict[int, list[tuple[str, int, list[int]]]] = field(default_factory=dict)
    out_of_order: dict[int, list[tuple[Key, Key]]] = field(default_factory=dict)
    unknown: dict[int, list[str]] = field(default_factory=dict)
    spurious: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    bad_receipts: list[dict[str, Any]] = field(default_factory=list)
    receipts: int = 0

    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.unknown or self.spurious
                    or self.bad_receipts)

    def summary(self) -> str:
        def first(d: dict[int, list[Any]]) -> str:
            n = sum(len(v) for v in d.values())
            return f"{n} in {len(d)} recipients" + (f", e.g. {next(iter(d.items()))}" if d else "")

        return (f"lost {first(self.lost)}; duplicated {first(self.duplicated)}; out of order "
                f"{first(self.out_of_order)}; unknown {first(self.unknown)}; spurious {first(self.spurious)}; "
                f"receipts {self.receipts}, for messages the socket never got: {len(self.bad_receipts)} "
                f"{self.bad_receipts[:3]}")


def judge(recipients: list[Recipient], senders: list[Sender], ledger: Ledger) -> Verdict:
    """Seed (and autosync) mode: every message once, each conversation in seq order,
    across all the recipient's connections. Modern mode: after the client's dedupe by (conv, seq),
    every message; what the server pushed on one connection in seq order, never twice."""
    v = Verdict()
    received_by: dict[int, set[Key]] = {}
    for rx in recipients:
        uid = rx.user.id
        expected = ledger.of_convs(rx.convs)
        keys: list[tuple[Got, Key]] = []
        for g in rx.got:
            key = ledger.by_content.get(g.content)
            if key is None:
                v.unknown.setdefault(uid, []).append(g.content)
            else:
                keys.append((g, key))
        received = {k for _, k in keys}
        received_by[uid] = received
        if missing := sorted(expected - received):
            v.lost[uid] = missing
        if rx.other:
            v.spurious[uid] = rx.other
        # Which frames must be in order and unique: all of them (seed), or what the
        # server pushed on each one connection (modern; sync pages may repeat those).
        streams: dict[tuple[int, str], list[tuple[Key, int]]] = {}
        for g, key in keys:
            if rx.mode in PUSHED:
                streams.setdefault((0, key[0]), []).append((key, g.conn))
            elif g.source == "push":
                streams.setdefault((g.conn, key[0]), []).append((key, g.conn))
        for stream in streams.values():
            conns: dict[Key, list[int]] = {}
            for key, conn in stream:
                conns.setdefault(key, []).append(conn)
            # (conv, seq, the recipient's connections that got it)
            dups = [(*k, c) for k, c in conns.items() if len(c) > 1]
            if dups:
                v.duplicated.setdefault(uid, []).extend(dups)
            bad = [(a, b) for (a, _), (b, _) in itertools.pairwise(stream) if b[1] <= a[1] and a != b]
            if bad:
                v.out_of_order.setdefault(uid, []).extend(bad)
    for s in senders:
        for r in s.receipts:
            v.receipts += 1
            got = received_by.get(r["userid"])
            if got is not None and (r["conv"], r["delivered_seq"]) not in got:
                v.bad_receipts.append(r)
    return v


async def settle(recipients: list[Recipient], ledger: Ledger) -> None:
    """Wait (bounded) until every recipient has everything, or give up and let the
    verdict say what is missing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    for rx in recipients:
        await rx.sync_done()
    while loop.time() < deadline:
        if all(ledger.of_convs(rx.convs) <= {ledger.by_content.get(g.content) for g in rx.got}
               for rx in recipients):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # anything extra (a duplicate) still in flight


async def users(http: TestClient, n: int) -> list[User]:
    out: list[User] = []
    for start in range(0, n, 20):
        out += await asyncio.gather(*(make_user(http) for _ in range(start, min(n, start + 20))))
    return out


async def group_of(http: TestClient, owner: User, members: list[User]) -> int:
    body = await api(http, "/contact/createcommunity", owner, ownerid=owner.id, name=f"g{owner.id}")
    assert body["code"] == 0, body
    gid = int(body["data"]["id"])
    for m in members:
        joined = await api(http, "/contact/joincommunity", m, userid=m.id, dstid=gid)
        assert joined["code"] == 0, joined
    return gid


async def reconnect_rounds(hub: TestClient, mode: str, rounds: int) -> Verdict:
    """(a): RECIPIENTS recipients, each with a friend who sends, in groups of
    GROUP_SIZE recipients and GROUP_SIZE senders. Each round every recipient goes
    away, misses messages, and comes back while more are being sent; a quarter of the
    time it reloads twice in a row, closing in the middle of its catch-up."""
    ledger = Ledger()
    rx_users, tx_users = await users(hub, RECIPIENTS), await users(hub, RECIPIENTS)
    recipients = [Recipient(hub, u, mode) for u in rx_users]
    senders = [Sender(hub, u, ledger) for u in tx_users]
    for rx, tx in zip(recipients, senders, strict=True):
        await befriend(hub, tx.user, rx.user)
        rx.convs.add(private_conv(rx.user.id, tx.user.id))
    groups: list[tuple[int, list[Sender]]] = []
    for k in range(0, RECIPIENTS, GROUP_SIZE):
        rxs, txs = recipients[k:k + GROUP_SIZE], senders[k:k + GROUP_SIZE]
        gid = await group_of(hub, txs[0].user, [t.user for t in txs[1:]] + [r.user for r in rxs])
        groups.append((gid, txs))
        for rx in rxs:
            rx.convs.add(f"g{gid}")
    await asyncio.gather(*(s.start() for s in senders))
    await asyncio.gather(*(rx.connect() for rx in recipients))
    rng = random.Random(15)
    try:
        for r in range(rounds):
            await asyncio.gather(*(rx.disconnect() for rx in recipients))
            # Missed while away: one 1:1 message each, one per group.
            await asyncio.gather(*(tx.send(10, rx.user.id) for rx, tx in zip(recipients, senders, strict=True)),
                                 *(txs[r % GROUP_SIZE].send(11, gid) for gid, txs in groups))

            async def come_back(rx: Recipient, delay: float, reload_twice: bool) -> None:
                await asyncio.sleep(delay)
                if reload_twice:
                    await rx.connect()
                    await asyncio.sleep(rng.uniform(0, 0.005))
                    await rx.disconnect()
                await rx.connect()

            async def send_live(tx: Sender, cmd: int, dstid: int, delay: float) -> None:
                await asyncio.sleep(delay)
                await tx.send(cmd, dstid)

            # ... and sent while they come back.
            await asyncio.gather(
                *(come_back(rx, rng.uniform(0, 0.01), rng.random() < 0.25) for rx in recipients),
                *(send_live(tx, 10, rx.user.id, rng.uniform(0, 0.012))
                  for rx, tx in zip(recipients, senders, strict=True)),
                *(send_live(txs[(r + 1) % GROUP_SIZE], 11, gid, rng.uniform(0, 0.012)) for gid, txs in groups),
            )
        await settle(recipients, ledger)
        assert not [rx.sync_errors for rx in recipients if rx.sync_errors]
        return judge(recipients, senders, ledger)
    finally:
        await asyncio.gather(*(rx.disconnect() for rx in recipients if rx.ws is not None), return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in senders), return_exceptions=True)


@pytest.mark.parametrize("mode", MODES)
async def test_recipients_reconnecting_while_friends_send(hub: TestClient, mode: str) -> None:
    verdict = await reconnect_rounds(hub, mode, ROUNDS)
    assert verdict.ok(), verdict.summary()
    assert verdict.receipts > 0, "no delivered receipt at all: the check checked nothing"


@pytest.mark.slow
@pytest.mark.skipif(not LONG_ROUNDS, reason="the long variant runs on demand: IMHUB_STRESS_ROUNDS=<rounds>")
@pytest.mark.parametrize("mode", MODES)
async def test_recipients_reconnecting_long(hub: TestClient, mode: str) -> None:
    verdict = await reconnect_rounds(hub, mode, LONG_ROUNDS)
    assert verdict.ok(), verdict.summary()


@pytest.mark.parametrize("mode", [*MODES, "autosync"])
async def test_a_thousand_missed_messages_arrive_all_once_in_order(hub: TestClient, mode: str) -> None:
    """(b): 4 friends x 210 + a group of them x 4 x 60 = 1,080 missed messages in five
    conversations (page size 50), then live messages during the catch-up."""
    ledger = Ledger()
    rx_user, *friend_users = await users(hub, 5)
    rx = Recipient(hub, rx_user, mode)
    friends = [Sender(hub, u, ledger) for u in friend_users]
    for f in friends:
        await befriend(hub, f.user, rx_user)
        rx.convs.add(private_conv(rx_user.id, f.user.id))
    gid = await group_of(hub, friends[0].user, [f.user for f in friends[1:]] + [rx_user])
    rx.convs.add(f"g{gid}")
    await asyncio.gather(*(f.start() for f in friends))
    await rx.connect()
    await rx.disconnect()
    try:
        await asyncio.gather(*(f.send(10, rx_user.id, BIG_BACKLOG_PER_FRIEND) for f in friends))
        await asyncio.gather(*(f.send(11, gid, 60) for f in friends))
        missed = len(ledger.of_convs(rx.convs))
        assert missed >= 1000

        async def live(f: Sender) -> None:
            for _ in range(10):
                await f.send(10, rx_user.id)
                await f.send(11, gid)

        await asyncio.gather(rx.connect(), *(live(f) for f in friends))
        await settle([rx], ledger)
        verdict = judge([rx], friends, ledger)
        assert verdict.ok(), verdict.summary()
        if mode in PUSHED:
            # The delivered cursor reached the end: coming back again pushes nothing.
            await rx.disconnect()
            before = len(rx.got)
            await rx.connect()
            await asyncio.sleep(0.5)
            assert rx.got[before:] == [] and rx.other == []
    finally:
        if rx.ws is not None:
            await rx.disconnect()
        await asyncio.gather(*(f.stop() for f in friends), return_exceptions=True)


async def test_catch_up_waits_for_a_cursor_save_in_flight(hub: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow database: one connection's catch-up has taken every pending delivered
    mark and is still saving them when another user reconnects. That user's catch-up
    must not read their cursor before the save lands (it would push again what their
    previous socket was given: a duplicate on the seed page)."""
    from imhub.store.messages import MessageStore

    save = MessageStore.advance_delivered

    async def slow_save(self: MessageStore, marks: Any) -> None:
        await asyncio.sleep(0.5)
        await save(self, marks)

    ledger = Ledger()
    r_user, s_user, other_user = await users(hub, 3)
    await befriend(hub, s_user, r_user)
    rx = Recipient(hub, r_user, "seed")
    rx.convs.add(private_conv(r_user.id, s_user.id))
    other = Recipient(hub, other_user, "seed")
    tx = Sender(hub, s_user, ledger)
    await tx.start()
    await rx.connect()
    try:
        await tx.send(10, r_user.id, 3)
        await settle([rx], ledger)
        assert len(rx.got) == 3
        monkeypatch.setattr(MessageStore, "advance_delivered", slow_save)
        await other.connect()  # its catch-up saves the marks (rx's too), slowly
        await asyncio.sleep(0.05)
        await rx.disconnect()
        await rx.connect()
        await asyncio.sleep(1.0)
        verdict = judge([rx], [tx], ledger)
        assert verdict.ok(), verdict.summary()
    finally:
        for r in (rx, other):
            if r.ws is not None:
                await r.disconnect()
        await tx.stop()
