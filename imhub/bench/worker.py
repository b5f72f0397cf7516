"""One load-generator process: holds up to ~15,000 WebSocket clients on uvloop, sends
what the coordinator asks, records what arrives, and checks it at the end.

The coordinator talks to it over a multiprocessing pipe, one command at a time:

- ``("connect", {})``  ramp up every assigned user -> ``("connected", stats)``
- ``("send", plan)``   fanout burst or paced chat, wait for acks -> ``("sent", acks)``
- ``("verify", acked)`` compare what arrived with what was acked -> ``("verified", result)``
- ``("storm", spec)``  reconnect storm: from now on every lost socket reconnects
  with backoff and jitter; ``spec["drop"]`` aborts them all at once first (otherwise
  the coordinator kills the server's workers) -> ``("stormed", stats)`` once every
  user is back (or ``spec["timeout"]`` passed)
- ``("close", {})``    close every socket and exit -> ``("closed", stats)``

and it reports ``("progress", counters)`` twice a second. Everything is bounded: each
phase has a timeout, and the whole process exits after ``max_seconds`` or when the
coordinator goes away (EOF on the pipe).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import random
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlencode

import orjson

from imhub.bench.wsclient import OPEN, Handshake, HandshakeError, WSClient, open_ws

PROGRESS_SECONDS = 0.5
HEARTBEAT = b'{"cmd":0}'


@dataclass
class WorkerConfig:
    index: int
    host: str
    port: int
    users: list[tuple[int, str]]  # (user id, token)
    offset: int = 0  # global index of users[0], for the choice of source address
    source_ips: list[str] = field(default_factory=list)
    per_ip: int = 14_000
    autosync: bool = False
    connect_rate: float = 1000.0  # handshakes started per second (this worker)
    concurrency: int = 64  # handshakes in flight (this worker)
    handshake_timeout: float = 30.0
    heartbeat: tuple[float, float] = (20.0, 25.0)  # seconds between heartbeats; (0, 0) = off
    expect: dict[int, list[str]] = field(default_factory=dict)  # user id -> conversations it receives
    max_seconds: float = 900.0
    run_id: str = ""  # makes cids unique across runs (the server dedupes per user + cid)
    ports: list[int] = field(default_factory=list)  # several nodes: user k (global index) uses ports[k % n]


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds before reconnect attempt ``attempt`` (0 = the first): "equal jitter",
    as the web client and imhub.client (docs/protocol.md): half the capped exponential
    step fixed, half random."""
    step = min(cap, base * 2.0 ** max(0, min(30, attempt)))
    return step / 2 + random.random() * step / 2


def _percentiles(values: array[Any] | list[float]) -> dict[str, float]:
    if not values:
        return {}
    s = sorted(values)
    n = len(s)

    def at(p: float) -> float:
        return round(float(s[min(n - 1, int(p * n))]), 3)

    return {"n": n, "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p999": at(0.999), "max": round(float(s[-1]), 3)}


# Latency histograms: log-spaced bins from 10 µs to 100 s, 20 per decade, so a CDF
# can be drawn from the JSON result without keeping every sample.
HIST_LO_MS = 0.01
HIST_PER_DECADE = 20
HIST_DECADES = 7


def histogram_edges() -> list[float]:
    return [round(HIST_LO_MS * 10 ** (k / HIST_PER_DECADE), 6) for k in range(HIST_DECADES * HIST_PER_DECADE + 1)]


def _histogram(values: array[Any] | list[float]) -> dict[str, Any]:
    """``{"edges": [...], "counts": [...]}``: counts[i] holds edges[i] <= v < edges[i+1]
    (values below the first edge count in the first bin, above the last in the last)."""
    nbins = HIST_DECADES * HIST_PER_DECADE
    counts = [0] * nbins
    log_lo = math.log10(HIST_LO_MS)
    for v in values:
        i = int((math.log10(v) - log_lo) * HIST_PER_DECADE) if v > 0 else 0
        counts[min(nbins - 1, max(0, i))] += 1
    return {"edges": histogram_edges(), "counts": counts}


class Worker:
    def __init__(self, cfg: WorkerConfig, pipe: Connection) -> None:
        self.cfg = cfg
        self.pipe = pipe
        self.hs = Handshake()
        self._index = {uid: i for i, (uid, _) in enumerate(cfg.users)}
        self.conns: dict[int, WSClient] = {}
        self.ever_open: set[int] = set()
        self.failures: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.handshake_ms: array[float] = array("f")
        # receiving
        self.recv: dict[tuple[int, str], array[int]] = {}
        self.received = 0
        self.recv_lat_ms: array[float] = array("f")
        # --warmup: the samples of messages sent from this monotonic time on, kept apart
        self.warm_until_ns = 0
        self.recv_lat_steady_ms: array[float] = array("f")
        self.ack_lat_steady_ms: array[float] = array("f")
        self.hb_sent = 0
        self.hb_replies = 0
        self.other: Counter[int] = Counter()
        self.bad_frames = 0
        # sending
        self._n = 0
        self.sent = 0
        self.send_failed = 0
        self.pending: dict[str, tuple[int, int]] = {}  # cid -> (sender, t_send_ns)
        self.acked = 0
        self.dup_acks = 0
        self.ack_lat_ms: array[float] = array("f")
        self.acked_by_conv: dict[str, list[tuple[int, int]]] = {}  # conv -> [(seq, sender)]
        self.errors: Counter[str] = Counter()
        self.closing = False
        # reconnect storm: users lost and not back yet, attempts that failed, when
        # each user came back (seconds after the storm began)
        self.storm: dict[str, Any] | None = None
        self.storm_t0 = 0.0
        self.storm_missing: set[int] = set()
        self.storm_failures: Counter[str] = Counter()
        self.storm_attempts = 0
        self.storm_back_s: array[float] = array("f")
        self.storm_sem: asyncio.Semaphore | None = None
        self.done = asyncio.Event()
        self.phase = "idle"

    # --- wsclient.Handler ----------------------------------------------------------

    def on_text(self, client: WSClient, payload: bytes) -> None:
        try:
            obj = orjson.loads(payload)
            cmd = obj.get("cmd")
        except (orjson.JSONDecodeError, AttributeError):
            self.bad_frames += 1
            return
        if cmd == 10 or cmd == 11:
            key = (client.uid, obj.get("conv", ""))
            seqs = self.recv.get(key)
            if seqs is None:
                seqs = self.recv[key] = array("q")
            seqs.append(int(obj.get("seq", 0)))
            self.received += 1
            content = obj.get("content", "")
            if content[:2] == "b ":
                with contextlib.suppress(ValueError):
                    t_sent = int(content[2:])
                    lat = (time.monotonic_ns() - t_sent) / 1e6
                    self.recv_lat_ms.append(lat)
                    if t_sent >= self.warm_until_ns:
                        self.recv_lat_steady_ms.append(lat)
        elif cmd == 1:
            entry = self.pending.pop(obj.get("cid", ""), None)
            if entry is None:
                self.dup_acks += 1
                return
            if obj.get("dup"):
                # The server took this cid for a resend of an older message: not a new one.
                self.errors["duplicate_cid"] += 1
                return
            self.acked += 1
            lat = (time.monotonic_ns() - entry[1]) / 1e6
            self.ack_lat_ms.append(lat)
            if entry[1] >= self.warm_until_ns:
                self.ack_lat_steady_ms.append(lat)
            self.acked_by_conv.setdefault(obj["conv"], []).append((int(obj["seq"]), entry[0]))
        elif cmd == 2:
            if self.pending.pop(obj.get("cid", ""), None) is not None:
                self.errors[str(obj.get("error"))] += 1
            else:
                self.errors["uncorrelated:" + str(obj.get("error"))] += 1
        elif cmd == 0:
            self.hb_replies += 1
        else:
            self.other[int(cmd) if isinstance(cmd, int) else -1] += 1

    def on_closed(self, client: WSClient, reason: str) -> None:
        if self.conns.get(client.uid) is client:
            del self.conns[client.uid]
        if self.closing:
            return
        if self.storm is not None:
            self._lost(client.uid)
        else:
            self.drops[reason[:80]] += 1

    # --- plumbing ------------------------------------------------------------------

    def send(self, kind: str, data: Any) -> None:
        try:
            self.pipe.send((kind, data))
        except (BrokenPipeError, EOFError, OSError):
            self.done.set()

    def counters(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "connected": len(self.conns),
            "failed": sum(self.failures.values()),
            "dropped": sum(self.drops.values()),
            "sent": self.sent,
            "acked": self.acked,
            "errors": sum(self.errors.values()),
            "received": self.received,
            "hb_sent": self.hb_sent,
            "hb_replies": self.hb_replies,
            "storm_back": len(self.ever_open) - len(self.storm_missing) if self.storm is not None else 0,
            "storm_failed_attempts": sum(self.storm_failures.values()),
        }

    def _on_pipe(self) -> None:
        try:
            kind, data = self.pipe.recv()
        except (EOFError, OSError):
            self.done.set()
            return
        handler = {"connect": self.connect_all, "send": self.run_send, "verify": self.verify, "close": self.close,
                   "storm": self.run_storm}
        task = asyncio.get_running_loop().create_task(handler[kind](data))
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.send("error", repr(task.exception()))
            self.done.set()

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.pipe.fileno(), self._on_pipe)
        # The event loop makes the fd non-blocking; sends of large results must not
        # stop half-way, so put it back (reads only happen when it is readable).
        os.set_blocking(self.pipe.fileno(), True)
        tasks = [loop.create_task(self._progress()), loop.create_task(self._heartbeats())]
        try:
            async with asyncio.timeout(self.cfg.max_seconds):
                await self.done.wait()
        except TimeoutError:
            self.send("error", f"worker {self.cfg.index} hit its time limit ({self.cfg.max_seconds}s)")
        finally:
            loop.remove_reader(self.pipe.fileno())
            for t in tasks:
                t.cancel()
            for c in list(self.conns.values()):
                c.abort()

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            self.send("progress", self.counters())

    async def _heartbeats(self) -> None:
        lo, hi = self.cfg.heartbeat
        if hi <= 0:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for c in list(self.conns.values()):
                if c.next_hb <= now and c.state == OPEN:
                    c.send_text(HEARTBEAT)
                    self.hb_sent += 1
                    c.next_hb = now + random.uniform(lo, hi)

    # --- phases --------------------------------------------------------------------

    def _source_ip(self, i: int) -> str | None:
        ips = self.cfg.source_ips
        if not ips:
            return None
        return ips[min(len(ips) - 1, (self.cfg.offset + i) // self.cfg.per_ip)]

    async def connect_all(self, _: Any) -> None:
        self.phase = "connect"
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(cfg.concurrency)
        interval = 1.0 / cfg.connect_rate if cfg.connect_rate > 0 else 0.0
        t0 = loop.time()
        tasks: list[asyncio.Task[None]] = []
        for i, (uid, _) in enumerate(cfg.users):
            delay = t0 + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            target, local_ip, port = self._where(i)
            tasks.append(loop.create_task(self._connect_one(uid, target, local_ip, port, sem)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - t0
        self.phase = "connected"
        self.send(
            "connected",
            {
                **self.counters(),
                "elapsed": elapsed,
                "failures": dict(self.failures),
                "handshake_ms": _percentiles(self.handshake_ms),
            },
        )

    def _where(self, i: int) -> tuple[str, str | None, int]:
        """User ``i`` of this worker: its /chat target, source address and port."""
        cfg = self.cfg
        uid, token = cfg.users[i]
        query = {"v": "2", "autosync": "1" if cfg.autosync else "0"}
        target = "/chat?" + urlencode({"id": uid, "token": token, **query})
        port = cfg.ports[(cfg.offset + i) % len(cfg.ports)] if cfg.ports else cfg.port
        return target, self._source_ip(i), port

    async def _open(self, uid: int, target: str, local_ip: str | None, port: int) -> str:
        """One handshake; "" when open, else why it failed."""
        lo, hi = self.cfg.heartbeat
        t = time.monotonic()
        try:
            client = await open_ws(
                uid, self, self.hs, self.cfg.host, port, target, local_ip=local_ip,
                timeout=self.cfg.handshake_timeout,
            )
        except HandshakeError as exc:
            return exc.reason[:80]
        except TimeoutError:
            return "timeout"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc.strerror or exc}"[:80]
        self.handshake_ms.append((time.monotonic() - t) * 1000)
        client.next_hb = asyncio.get_running_loop().time() + random.uniform(lo, hi) if hi > 0 else float("inf")
        self.conns[uid] = client
        self.ever_open.add(uid)
        return ""

    async def _connect_one(
        self, uid: int, target: str, local_ip: str | None, port: int, sem: asyncio.Semaphore
    ) -> None:
        try:
            failure = await self._open(uid, target, local_ip, port)
            if failure:
                self.failures[failure] += 1
        finally:
            sem.release()

    # --- reconnect storm -------------------------------------------------------------

    async def run_storm(self, spec: dict[str, Any]) -> None:
        """Every socket lost from now on comes back as a real client would: after
        ``backoff_delay(attempt)`` (jitter included), again and again until it is open.
        With ``drop``, all of this worker's sockets are aborted at once first (a network
        blip, a load balancer restart); otherwise the coordinator kills the server's
        workers. Reports when every user that was connected is back."""
        self.phase = "storm"
        loop = asyncio.get_running_loop()
        self.storm = spec
        self.storm_t0 = loop.time()
        self.storm_sem = asyncio.Semaphore(max(1, int(spec["concurrency"])))
        if spec.get("drop"):
            for c in list(self.conns.values()):
                c.abort()  # on_closed -> _lost -> a reconnect task
        deadline = self.storm_t0 + float(spec["timeout"])
        # Done when something was lost and every user that was ever open is open again.
        while loop.time() < deadline and not self._all_back():  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.05)
        elapsed = max(self.storm_back_s, default=loop.time() - self.storm_t0)
        self.phase = "stormed"
        self.send("stormed", {
            **self.counters(),
            "elapsed": elapsed,
            "lost": len(self.ever_open),
            "not_back": len(self.storm_missing),
            "attempts": self.storm_attempts,
            "failures": dict(self.storm_failures),
            "back_s": _percentiles(self.storm_back_s),
            "handshake_ms": _percentiles(self.handshake_ms),
        })

    def _all_back(self) -> bool:
        return bool(self.storm_back_s) and not self.storm_missing and len(self.conns) >= len(self.ever_open)

    def _lost(self, uid: int) -> None:
        if uid in self.storm_missing:
            return
        self.storm_missing.add(uid)
        asyncio.get_running_loop().create_task(self._come_back(uid))

    async def _come_back(self, uid: int) -> None:
        spec = self.storm
        assert spec is not None and self.storm_sem is not None
        loop = asyncio.get_running_loop()
        i = self._index[uid]
        target, local_ip, port = self._where(i)
        attempt = 0
        while not self.closing:
            await asyncio.sleep(backoff_delay(attempt, float(spec["base"]), float(spec["cap"])))
            async with self.storm_sem:
                self.storm_attempts += 1
                failure = await self._open(uid, target, local_ip, port)
            if not failure:
                break
            self.storm_failures[failure] += 1
            attempt += 1
        self.storm_back_s.append(loop.time() - self.storm_t0)
        self.storm_missing.discard(uid)

    def _send_message(self, client: WSClient, cmd: int, dst: int) -> None:
        self._n += 1
        cid = f"{self.cfg.run_id}w{self.cfg.index}-{self._n}"
        t = time.monotonic_ns()
        payload = b'{"cmd":%d,"dstid":%d,"media":1,"content":"b %d","cid":"%s"}' % (cmd, dst, t, cid.encode())
        if client.send_text(payload):
            self.pending[cid] = (client.uid, t)
            self.sent += 1
        else:
            self.send_failed += 1

    async def _paced(self, streams: list[tuple[int, float, list[tuple[int, int]]]], t0: float,
                     duration: float) -> None:
        loop = asyncio.get_running_loop()
        end = t0 + duration
        done = [0] * len(streams)
        while True:
            now = loop.time()
            if now >= end:
                break
            for k, (cmd, rate, senders) in enumerate(streams):
                due = int((now - t0) * rate) - done[k]
                for _ in range(due):
                    uid, dst = senders[done[k] % len(senders)]
                    done[k] += 1
                    client = self.conns.get(uid)
                    if client is None:  # dropped meanwhile: counted, the drop fails the run
                        self.send_failed += 1
                    else:
                        self._send_message(client, cmd, dst)
            await asyncio.sleep(0.002)

    async def run_send(self, plan: dict[str, Any]) -> None:
        """``fanout``: every sender sends ``messages`` back to back. ``chat`` (one
        stream of cmd 10) and ``paced`` (``streams`` of {cmd, rate, senders}): each
        stream sends at its ``rate`` (messages/s, this worker's share), round-robin
        over its senders, for ``duration`` seconds. Then wait for the acks."""
        self.phase = "send"
        self.warm_until_ns = int(plan.get("warmup_until_ns", 0))
        # The clients and their buffers live for the whole run: never scan them again,
        # so a collector pause here does not show up as server latency.
        gc.collect()
        gc.freeze()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        missing = 0
        if plan["kind"] == "fanout":
            senders = [(self.conns[u], d) for u, d in plan["senders"] if u in self.conns]
            missing = len(plan["senders"]) - len(senders)
            for _ in range(int(plan["messages"])):
                for client, gid in senders:
                    self._send_message(client, 11, gid)
        else:
            specs = plan["streams"] if plan["kind"] == "paced" else [
                {"cmd": 10, "rate": plan["rate"], "senders": plan["senders"]}
            ]
            streams: list[tuple[int, float, list[tuple[int, int]]]] = []
            for spec in specs:
                wanted = [(int(u), int(d)) for u, d in spec["senders"]]
                present = [(u, d) for u, d in wanted if u in self.conns]
                missing += len(wanted) - len(present)
                if present and float(spec["rate"]) > 0:
                    streams.append((int(spec["cmd"]), float(spec["rate"]), present))
            await self._paced(streams, t0, float(plan["duration"]))
        t_sent = loop.time()
        deadline = t_sent + float(plan.get("ack_timeout", 30.0))
        while self.pending and loop.time() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.01)
        self.phase = "sent"
        self.send(
            "sent",
            {
                "sent": self.sent,
                "acked": self.acked,
                "unacked": len(self.pending),
                "send_failed": self.send_failed + missing,
                "errors": dict(self.errors),
                "dup_acks": self.dup_acks,
                "send_seconds": t_sent - t0,
                "ack_seconds": loop.time() - t0,
                "acked_by_conv": self.acked_by_conv,
                "ack_lat_ms": self.ack_lat_ms,
                "ack_lat_steady_ms": self.ack_lat_steady_ms,
            },
        )

    async def verify(self, acked_by_conv: dict[str, list[tuple[int, int]]]) -> None:
        """Compare what each receiver got with what was acked (every sender's own
        messages excluded: the sending connection gets the ack instead)."""
        self.phase = "verify"
        expected = delivered = lost = duplicated = out_of_order = gaps = unexpected = 0
        per_conv_expected: dict[str, set[int]] = {}
        worst: list[str] = []
        checked: set[tuple[int, str]] = set()
        for uid, convs in self.cfg.expect.items():
            if uid not in self.ever_open:
                continue
            for conv in convs:
                acked = acked_by_conv.get(conv)
                if not acked:
                    continue
                checked.add((uid, conv))
                if conv not in per_conv_expected:
                    per_conv_expected[conv] = {s for s, _ in acked}
                exp = per_conv_expected[conv] - {s for s, sender in acked if sender == uid}
                order = sorted(exp)
                nxt = 0  # index into order of the next seq this receiver should see
                seen: set[int] = set()
                hi = 0
                for seq in self.recv.get((uid, conv), ()):
                    if seq not in exp:
                        unexpected += 1
                        continue
                    if seq in seen:
                        duplicated += 1
                        continue
                    if seq < hi:
                        out_of_order += 1
                    else:
                        while nxt < len(order) and order[nxt] < seq:
                            nxt += 1
                            gaps += 1
                        nxt += 1
                        hi = seq
                    seen.add(seq)
                expected += len(exp)
                delivered += len(seen)
                missing = len(exp) - len(seen)
                lost += missing
                if missing and len(worst) < 10:
                    worst.append(f"user {uid} {conv}: missing {sorted(exp - seen)[:5]}")
        for key, seqs in self.recv.items():
            if key not in checked:
                unexpected += len(seqs)
        self.phase = "verified"
        self.send(
            "verified",
            {
                "expected": expected,
                "delivered": delivered,
                "lost": lost,
                "duplicated": duplicated,
                "out_of_order": out_of_order,
                "gaps": gaps,
                "unexpected": unexpected,
                "examples": worst,
                "recv_lat_ms": self.recv_lat_ms,
                "recv_lat_steady_ms": self.recv_lat_steady_ms,
                "received": self.received,
                "other_frames": dict(self.other),
                "bad_frames": self.bad_frames,
            },
        )

    async def close(self, _: Any) -> None:
        self.phase = "closing"
        self.closing = True
        loop = asyncio.get_running_loop()
        for c in list(self.conns.values()):
            c.close()
        deadline = loop.time() + 5.0
        while self.conns and loop.time() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.05)
        for c in list(self.conns.values()):
            c.abort()
        self.phase = "closed"
        self.send(
            "closed",
            {**self.counters(), "drops": dict(self.drops), "hb_sent": self.hb_sent, "hb_replies": self.hb_replies},
        )
        self.done.set()


def worker_main(cfg: WorkerConfig, pipe: Connection) -> None:
    """Entry point of a worker process."""
    import uvloop

    os.environ.setdefault("PYTHONHASHSEED", "0")
    # Fewer, larger young collections: the latency samples and per-message records kept
    # for the verification would otherwise set off full scans during the send phase.
    gc.set_threshold(100_000, 50, 1000)
    try:
        uvloop.run(Worker(cfg, pipe).main())
    finally:
        with contextlib.suppress(OSError):
            pipe.close()
