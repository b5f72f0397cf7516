"""Chaos harness: a steady 1:1 chat load from clients that behave like the real web
client (frontend/src/lib/chatcore.js), a fault injected in the middle, and a verdict.

Each :class:`ChaosClient` holds one WebSocket and, like the real client:

- sends one message at a time to its peer with a ``cid`` and waits for the ack; on a
  close, a timeout or an error it reconnects (capped backoff with jitter) and resends the
  *same* ``cid`` (this is what :class:`tests.ops.loadkit.Sender` does, plus receiving);
- applies incoming messages by (conversation, seq): seq == last + 1 is applied, a seq it
  has already is a redelivery (dropped), a gap starts a sync (cmd 20) from the last seq;
- after every (re)connect, and on cmd 37, syncs before trusting live delivery again.

:func:`verdict` then compares what every receiver *applied* with what every sender got
acked (no extra sync at the end: recovery has to come from the protocol itself) and
with what the server stored (a fresh sync through :func:`tests.ops.loadkit.stored_cids`):

- ``lost``: acked by the sender, never applied by the receiver (or not stored);
- ``duplicated``: one ``cid`` stored under two seqs (the resend was stored again);
- ``out_of_order``: a receiver applied a seq below one it had applied already, or the
  stored order of one sender's messages differs from the order it sent them.

The load is small on purpose (a few clients, tens of messages a second): the point is
correctness under faults, not throughput (that is ``imhub bench``, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tests.integration.chatkit import User, befriend, make_user
from tests.ops.loadkit import stored_cids

#: ``IMHUB_CHAOS_LONG=1`` runs each scenario longer, with more clients and repeated faults.
LONG = os.environ.get("IMHUB_CHAOS_LONG", "").lower() in ("1", "true", "yes")


def pconv(a: int, b: int) -> str:
    return f"p{min(a, b)}_{max(a, b)}"


@dataclass
class ChaosClient:
    user: User
    peer: int
    base_url: str
    pace: float = 0.1  # seconds between messages (the per-connection limit is 20/s)
    ack_timeout: float = 6.0
    # sending
    sent_order: list[str] = field(default_factory=list)  # cids in the order first sent
    acked: dict[str, int] = field(default_factory=dict)  # cid -> seq
    ack_times: list[float] = field(default_factory=list)  # monotonic time of each ack
    dup_acks: int = 0  # acks with "dup": true (a resend the server recognised)
    resends: int = 0
    # receiving
    applied: list[tuple[int, str]] = field(default_factory=list)  # (seq, cid) applied, in order
    last_seq: int = 0
    redelivered: int = 0
    out_of_order: int = 0
    gap_syncs: int = 0
    resync_frames: int = 0  # cmd 37 received
    # connection
    connects: int = 0
    connected_at: list[float] = field(default_factory=list)
    close_codes: list[int] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conv = pconv(self.user.id, self.peer)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ack: asyncio.Future[dict[str, Any]] | None = None
        self._syncing = False
        self._max_live = 0
        self._n = 0
        self._abort_next_send = False
        self._seen: set[int] = set()
        self._own: set[int] = set()

    # --- the fault hooks -----------------------------------------------------------

    def abort(self) -> None:
        """Drop the TCP connection now, without a close frame (a network failure)."""
        ws = self.ws
        if ws is not None:
            transport = ws._conn.transport if ws._conn is not None else None
            if transport is not None:
                transport.abort()

    def abort_after_next_send(self) -> None:
        """Drop the connection right after the next message frame is written, before its
        ack can arrive: the server may or may not have stored it; the resend decides."""
        self._abort_next_send = True

    # --- the client ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        cid: str | None = None
        failures = 0
        async with aiohttp.ClientSession(base_url=self.base_url) as http:
            while True:
                if stop.is_set() and cid is None:
                    return
                try:
                    ws = await http.ws_connect(
                        "/chat", params={"id": str(self.user.id), "token": self.user.token, "autosync": "0", "v": "2"},
                        timeout=aiohttp.ClientWSTimeout(ws_close=2), heartbeat=None,
                    )
                except (aiohttp.ClientError, OSError, TimeoutError):
                    failures += 1
                    await asyncio.sleep(min(1.0, 0.05 * 2 ** min(failures, 5)) * random.uniform(0.5, 1.0))
                    continue
                failures = 0
                self.ws = ws
                self.connects += 1
                self.connected_at.append(time.monotonic())
                reader = asyncio.create_task(self._read(ws))
                try:
                    self._syncing = False  # a sync asked on the old socket died with it
                    await self._sync()
                    while True:
                        if cid is None:
                            if stop.is_set():
                                return
                            self._n += 1
                            cid = f"u{self.user.id}-{self._n}"
                            self.sent_order.append(cid)
                        else:
                            self.resends += 1
                        reply = await self._send(ws, cid)
                        if reply is None:
                            break  # closed or silent: reconnect, resend the same cid
                        if reply["cmd"] == 1:
                            if reply.get("dup"):
                                self.dup_acks += 1
                            self.acked[cid] = int(reply["seq"])
                            self._own.add(int(reply["seq"]))
                            self._advance()
                            self.ack_times.append(time.monotonic())
                            cid = None
                        elif reply.get("error") in ("rate_limited", "internal", "overloaded"):
                            await asyncio.sleep(0.5)  # then resend the same cid
                        else:
                            self.refused.append(reply)
                            cid = None
                        await asyncio.sleep(self.pace)
                except (aiohttp.ClientError, OSError, ConnectionError, TimeoutError):
                    pass
                finally:
                    reader.cancel()
                    with contextlib.suppress(BaseException):
                        await reader
                    with contextlib.suppress(Exception):
                        await ws.close()
                    if ws.close_code is not None and not stop.is_set():
                        self.close_codes.append(int(ws.close_code))
                    self.ws = None

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, cid: str) -> dict[str, Any] | None:
        self._ack = asyncio.get_running_loop().create_future()
        frame = {"cmd": 10, "dstid": self.peer, "media": 1, "content": cid, "cid": cid}
        await ws.send_str(orjson.dumps(frame).decode())
        if self._abort_next_send:
            self._abort_next_send = False
            self.abort()
        try:
            return await asyncio.wait_for(asyncio.shield(self._ack), self.ack_timeout)
        except (TimeoutError, ConnectionError):
            return None
        finally:
            self._ack = None

    async def _sync(self) -> None:
        """cmd 20 from the last applied seq; the pages are applied by the reader."""
        if self._syncing or self.ws is None:
            return
        self._syncing = True
        try:
            await self.ws.send_str(orjson.dumps(
                {"cmd": 20, "rid": "sync", "after": {self.conv: self.last_seq}, "limit": 200}).decode())
        except (aiohttp.ClientError, OSError, ConnectionError):
            self._syncing = False

    def _apply(self, seq: int, cid: str, own: bool) -> None:
        """Apply the message with ``seq`` (contiguous by the caller's check)."""
        if seq <= self.last_seq:
            if own:
                return
            if seq in self._seen:
                self.redelivered += 1
            else:
                self.out_of_order += 1  # a hole behind us filled late: order was broken
            return
        if seq != self.last_seq + 1:
            self.out_of_order += 1  # cannot happen with contiguous sync pages; counted, not hidden
        self.last_seq = seq
        if not own:
            self._seen.add(seq)
            self.applied.append((seq, cid))
        self._advance()

    def _advance(self) -> None:
        """Our own messages take seqs in the same conversation: skip the acked ones."""
        while self.last_seq + 1 in self._own:
            self.last_seq += 1

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                f = orjson.loads(msg.data)
                cmd = f.get("cmd")
                if cmd in (1, 2):
                    if self._ack is not None and not self._ack.done():
                        self._ack.set_result(f)
                elif cmd == 10 and f.get("conv") == self.conv:
                    if f.get("userid") == self.user.id:
                        continue  # our own message echoed to another device (none here)
                    seq = int(f["seq"])
                    self._max_live = max(self._max_live, seq)
                    if self._syncing:
                        if seq in self._seen:
                            self.redelivered += 1
                    elif seq <= self.last_seq + 1:
                        self._apply(seq, str(f.get("cid") or ""), own=False)
                    else:
                        self.gap_syncs += 1
                        await self._sync()
                elif cmd == 30:
                    self._syncing = False
                    for m in f["msgs"]:
                        if m.get("conv") == self.conv:
                            self._apply(int(m["seq"]), str(m.get("cid") or ""), own=m.get("userid") == self.user.id)
                    if f.get("more") or self._max_live > self.last_seq:
                        await self._sync()
                elif cmd == 37:
                    self.resync_frames += 1
                    await self._sync()
        finally:
            if self._ack is not None and not self._ack.done():
                self._ack.set_exception(ConnectionError("socket closed"))


# --- a run ------------------------------------------------------------------------------


@dataclass
class Result:
    pairs: int
    sent: int
    acked: int
    delivered: int
    expected: int
    lost: int
    duplicated: int
    out_of_order: int
    redelivered: int
    resends: int
    dup_acks: int
    reconnects: int
    resync_frames: int
    gap_syncs: int
    recovery_s: float
    reconnect_s: float
    close_codes: dict[int, int]
    details: list[str]

    def line(self) -> str:
        return (f"sent {self.sent}, acked {self.acked}, delivered {self.delivered} of {self.expected} expected, "
                f"lost {self.lost}, duplicated {self.duplicated}, out-of-order {self.out_of_order}; "
                f"recovery {self.recovery_s:.2f} s (all reconnected {self.reconnect_s:.2f} s), "
                f"reconnects {self.reconnects}, resends {self.resends} ({self.dup_acks} dup acks), "
                f"redelivered {self.redelivered}, gap syncs {self.gap_syncs}, cmd 37 {self.resync_frames}, "
                f"close codes {self.close_codes}")


class ChatLoad:
    """``pairs`` friend pairs on ``base_url``, both sides sending to each other."""

    def __init__(self, base_url: str, pairs: int = 4, pace: float = 0.1) -> None:
        self.base_url = base_url
        self.n_pairs = pairs
        self.pace = pace
        self.clients: list[ChaosClient] = []
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.fault_at = 0.0

    async def setup(self) -> None:
        async with aiohttp.ClientSession(base_url=self.base_url) as http:
            for _ in range(self.n_pairs):
                a, b = await make_user(http), await make_user(http)  # type: ignore[arg-type]
                await befriend(http, a, b)  # type: ignore[arg-type]
                self.clients += [ChaosClient(a, b.id, self.base_url, self.pace),
                                 ChaosClient(b, a.id, self.base_url, self.pace)]

    def start(self) -> None:
        self.tasks = [asyncio.create_task(c.run(self.stop)) for c in self.clients]

    def acked(self) -> int:
        return sum(len(c.acked) for c in self.clients)

    async def wait_flowing(self, more: int = 10, timeout: float = 60.0) -> None:
        """Until ``more`` further messages were acked (the load runs)."""
        target = self.acked() + more
        deadline = time.monotonic() + timeout
        while self.acked() < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the load is stuck at {self.acked()} acked")
            await asyncio.sleep(0.05)

    def mark_fault(self) -> None:
        self.fault_at = time.monotonic()

    async def wait_recovered(self, timeout: float = 60.0) -> None:
        """Until every client has had a message acked after the fault."""
        deadline = time.monotonic() + timeout
        while not all(c.ack_times and c.ack_times[-1] > self.fault_at for c in self.clients):
            if time.monotonic() > deadline:
                stuck = [c.user.id for c in self.clients if not (c.ack_times and c.ack_times[-1] > self.fault_at)]
                raise AssertionError(f"clients {stuck} did not recover in {timeout}s")
            await asyncio.sleep(0.05)

    async def finish(self, settle: float = 30.0) -> Result:
        """Stop sending, wait until receivers applied what was acked (bounded), judge."""
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 60)
        by_user = {c.user.id: c for c in self.clients}
        # Receivers keep their sockets open while they catch up: reopen them, as a
        # client that stays online would be (the run loop returned once sends ended).
        catchers = [asyncio.create_task(self._catch_up(c, by_user[c.peer], settle)) for c in self.clients]
        await asyncio.gather(*catchers)
        return await self.judge()

    async def _catch_up(self, rx: ChaosClient, tx: ChaosClient, settle: float) -> None:
        want = max(tx.acked.values(), default=0)
        if rx.last_seq >= want:
            return
        async with aiohttp.ClientSession(base_url=self.base_url) as http:
            ws = await http.ws_connect(
                "/chat", params={"id": str(rx.user.id), "token": rx.user.token, "autosync": "0", "v": "2"})
            rx.ws = ws
            reader = asyncio.create_task(rx._read(ws))
            rx._syncing = False
            await rx._sync()  # what every reconnect does
            deadline = time.monotonic() + settle
            while rx.last_seq < want and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            await ws.close()

    async def judge(self) -> Result:
        by_user = {c.user.id: c for c in self.clients}
        lost = duplicated = out_of_order = delivered = expected = 0
        details: list[str] = []
        async with aiohttp.ClientSession(base_url=self.base_url) as http:
            for tx in self.clients:
                rx = by_user[tx.peer]
                got = {cid for _, cid in rx.applied}
                missing = [cid for cid in tx.acked if cid not in got]
                expected += len(tx.acked)
                delivered += len(tx.acked) - len(missing)
                lost += len(missing)
                if missing:
                    details.append(f"{rx.user.id} never applied {missing[:5]} from {tx.user.id}")
                stored = await stored_cids(http, tx.user, tx.conv)  # type: ignore[arg-type]
                not_stored = set(tx.acked) - set(stored)
                if not_stored:
                    lost += len(not_stored)
                    details.append(f"acked but not stored: {sorted(not_stored)[:5]}")
                dups = len(stored) - len(set(stored))
                duplicated += dups
                if dups:
                    details.append(f"stored twice from {tx.user.id}: {len(stored)} rows, {len(set(stored))} cids")
                # The stored order of one sender's messages is the order it sent them.
                rank = {cid: i for i, cid in enumerate(tx.sent_order)}
                ranks = [rank[c] for c in dict.fromkeys(stored) if c in rank]
                inversions = sum(1 for x, y in itertools.pairwise(ranks) if y < x)
                out_of_order += inversions + rx.out_of_order
                if tx.refused:
                    details.append(f"{tx.user.id} refused: {tx.refused[:3]}")
        after = [c for c in self.clients if c.ack_times and c.ack_times[-1] > self.fault_at]
        recovery = max((next(t for t in c.ack_times if t > self.fault_at) - self.fault_at for c in after), default=0.0)
        reconnect = max((next((t for t in c.connected_at if t > self.fault_at), self.fault_at) - self.fault_at
                         for c in self.clients), default=0.0)
        codes: dict[int, int] = {}
        for c in self.clients:
            for code in c.close_codes:
                codes[code] = codes.get(code, 0) + 1
        return Result(
            pairs=self.n_pairs, sent=sum(len(c.sent_order) for c in self.clients), acked=self.acked(),
            delivered=delivered, expected=expected, lost=lost, duplicated=duplicated, out_of_order=out_of_order,
            redelivered=sum(c.redelivered for c in self.clients), resends=sum(c.resends for c in self.clients),
            dup_acks=sum(c.dup_acks for c in self.clients), reconnects=sum(c.connects - 1 for c in self.clients),
            resync_frames=sum(c.resync_frames for c in self.clients),
            gap_syncs=sum(c.gap_syncs for c in self.clients), recovery_s=recovery, reconnect_s=reconnect,
            close_codes=codes, details=details,
        )


def assert_clean(result: Result, name: str) -> None:
    """Print the numbers (``pytest -s`` shows them; docs/reliability.md records them),
    then insist on the zeros."""
    print(f"\nchaos {name}: {result.line()}")
    assert result.acked > 0
    assert result.lost == 0, result.details
    assert result.duplicated == 0, result.details
    assert result.out_of_order == 0, result.details
    assert result.delivered == result.expected
    assert not any("refused" in d for d in result.details), result.details


async def run_with_fault(load: ChatLoad, fault: Callable[[], Awaitable[None]], rounds: int = 1,
                         warmup: int = 20, between: int = 20) -> Result:
    load.start()
    try:
        await load.wait_flowing(warmup)
        for _ in range(rounds):
            load.mark_fault()
            await fault()
            await load.wait_recovered()
            await load.wait_flowing(between)
    except BaseException:
        load.stop.set()
        for t in load.tasks:
            t.cancel()
        raise
    return await load.finish()
