"""The bench coordinator: prepares the server (spawned or existing), plans who connects
where and who sends what, drives the worker processes phase by phase, samples server
and client CPU/RSS from /proc, shows live progress, verifies delivery and writes the
result (docs/benchmarks.md).

The coordinator is plain synchronous code; only the workers run event loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from imhub.bench import procstat
from imhub.bench.seed import DEFAULT_PASSWORD, Seeded, SeedGroup, SeedUser, seed
from imhub.bench.worker import WorkerConfig, _histogram, _percentiles, worker_main

TICK = 0.5
MAX_TIMELINE = 4000
DEFAULT_SEND_RATE = 20.0  # the server's IMHUB_SEND_RATE_PER_SECOND default
TIMELINE_COLUMNS = [
    # The first four are the original columns (kept in place for older readers).
    "t", "server_cpu_s", "server_rss", "client_cpu_s", "client_rss", "server_procs",
    # Counters summed over the client workers: connections open now, then cumulative
    # counts (throughput is their slope).
    "connected", "failed", "dropped", "sent", "acked", "received", "errors", "hb_sent", "hb_replies",
]


class BenchError(RuntimeError):
    """The bench itself could not complete (timeout, worker died, bad setup)."""


@dataclass
class Options:
    scenario: str  # connect | fanout | chat | mixed
    spawn: bool = False
    url: str = ""
    server_pids: list[int] = field(default_factory=list)
    users_file: Path | None = None
    server_workers: int = 1
    server_nodes: int = 1  # --spawn: servers sharing the database and the Redis bus
    server_env: dict[str, str] = field(default_factory=dict)
    server_log_level: str = "warning"
    data_dir: Path | None = None
    workers: int = 0  # 0: one per per_worker users
    per_worker: int = 15_000
    source_ips: int = -1  # -1: as many as needed at per_ip connections each; 0: none
    per_ip: int = 14_000
    connect_rate: float = 2000.0
    concurrency: int = 100
    handshake_timeout: float = 30.0
    autosync: bool = False
    heartbeat: tuple[float, float] = (20.0, 25.0)
    hold: float = 0.0
    users: int = 1000  # connect, mixed: users online
    group_size: int = 1000  # fanout, mixed
    messages: int = 50  # fanout: per sender
    senders: int = 1  # fanout
    pairs: int = 500  # chat
    rate: float = 1000.0  # chat: messages/s in total
    duration: float = 10.0  # chat, mixed
    chat_fraction: float = 0.2  # mixed: share of the online users chatting 1:1 (in friend pairs)
    chat_rate: float = 100.0  # mixed: 1:1 messages/s in total
    groups: int = 2  # mixed: groups receiving messages
    group_rate: float = 10.0  # mixed: group messages/s in total
    group_senders: int = 2  # mixed: members of each group who send
    warmup: float = 0.0  # chat, mixed: seconds of sending left out of the "after warm-up" latencies
    ack_timeout: float = 60.0
    settle_timeout: float = 60.0
    max_seconds: float = 900.0
    password: str = DEFAULT_PASSWORD
    json_out: Path | None = None
    quiet: bool = False
    # connect: a reconnect storm after the hold. "drop": every client aborts its socket
    # at once; "kill": the server's workers are SIGKILLed (the supervisor forks new
    # ones; a single spawned server is started again). Clients come back with the
    # protocol's backoff (storm_base, storm_cap: equal jitter), at most
    # storm_concurrency handshakes in flight over all client workers.
    storm: str = ""
    storm_base: float = 0.5
    storm_cap: float = 30.0
    storm_concurrency: int = 1000
    storm_timeout: float = 300.0


@dataclass
class Stream:
    """Who sends what: ``cmd`` 10 (1:1, destination a peer) or 11 (group, destination
    a group id); ``rate`` is messages/s per sender (0: a back-to-back burst)."""

    cmd: int
    senders: list[tuple[int, int]]  # (user id, destination)
    rate: float = 0.0


@dataclass
class Plan:
    users: list[SeedUser]
    expect: dict[int, list[str]]  # user id -> conversations it must receive
    streams: list[Stream]
    send: dict[str, Any] | None  # the send command's common part (kind, timeouts, ...)


# --- the server under test -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SpawnedServer:
    """``imhub serve`` in a child process (the bench's ``--spawn``, and the tests'
    crash/restart, multi-process and browser runs via tests/serverproc.py)."""

    def __init__(
        self, data_dir: Path, workers: int = 1, log_level: str = "warning", env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "IMHUB_DATA_DIR": str(data_dir),
            "IMHUB_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'imhub.db'}",
            "IMHUB_HOST": "127.0.0.1",
            "IMHUB_PORT": str(self.port),
            "IMHUB_WORKERS": str(workers),
            "IMHUB_LOG_LEVEL": log_level,
            # Every bench client comes from a handful of loopback addresses.
            "IMHUB_MAX_CONNECTIONS_PER_IP": "0",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def database_url(self) -> str:
        return self.env["IMHUB_DATABASE_URL"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> SpawnedServer:
        """Start (or start again on the same port) and wait until it answers HTTP."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imhub", "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/openapi.json", timeout=1):  # noqa: S310 - loopback
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BenchError(f"server did not start in {timeout}s: {self.tail()}")

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushes — a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (a graceful drain), SIGKILL if it does not exit in time."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def cleanup_redis(env: dict[str, str]) -> int:
    """Delete what a spawned server left in Redis under the prefix the bench chose for
    it (presence claims of crashed or slow-to-stop workers: a 100k run leaves ~180,000
    keys, and a Redis full of them slowed the next runs down). Returns the count."""
    prefix = env.get("IMHUB_REDIS_PREFIX", "")
    if env.get("IMHUB_BUS") != "redis" or not prefix.startswith("imhub-bench-"):
        return 0
    import redis  # the server's own dependency

    deleted = 0
    for url in env.get("IMHUB_REDIS_URL", "redis://127.0.0.1:6379/0").split(","):  # every shard
        client = redis.Redis.from_url(url.strip(), socket_timeout=10)
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += int(client.delete(*batch))
                    batch = []
            if batch:
                deleted += int(client.delete(*batch))
        except redis.RedisError:
            pass  # best effort: the keys expire from the presence view anyway
        finally:
            client.close()
    return deleted


async def _migrate_and_seed(database_url: str, seed_kwargs: dict[str, Any]) -> Seeded:
    from imhub.store.engine import create_engine
    from imhub.store.migrate import migrate

    await migrate(database_url)
    engine = create_engine(database_url)
    try:
        return await seed(engine, **seed_kwargs)
    finally:
        await engine.dispose()


# --- planning ----------------------------------------------------------------------------


def seed_needs(o: Options) -> dict[str, Any]:
    """What a spawned server must be seeded with for this scenario."""
    if o.scenario == "connect":
        return {"count": o.users}
    if o.scenario == "fanout":
        return {"count": o.group_size, "group_size": o.group_size, "groups": 1}
    if o.scenario == "mixed":
        if o.groups:
            return {"count": o.users, "pairs": True, "group_size": o.group_size, "groups": o.groups}
        return {"count": o.users, "pairs": True}
    return {"count": 2 * o.pairs, "pairs": True}


def plan(o: Options, seeded: Seeded) -> Plan:
    by_id = {u.id: u for u in seeded.users}
    if o.scenario == "connect":
        if len(seeded.users) < o.users:
            raise BenchError(f"{o.users} users wanted, the seed file has {len(seeded.users)}")
        return Plan(seeded.users[: o.users], {}, [], None)
    if o.scenario == "mixed":
        return plan_mixed(o, seeded)
    if o.scenario == "fanout":
        group: SeedGroup | None = next((g for g in seeded.groups if len(g.members) >= o.group_size), None)
        if group is None:
            raise BenchError(f"no seeded group with {o.group_size} members (seed with --group-size)")
        members = group.members[: o.group_size]
        conv = f"g{group.id}"
        users = [by_id[m] for m in members if m in by_id]
        if len(users) < len(members):
            raise BenchError("the seed file lacks tokens for some group members")
        senders = [(m, group.id) for m in members[: max(1, o.senders)]]
        return Plan(users, {m: [conv] for m in members}, [Stream(11, senders)],
                    {"kind": "fanout", "messages": o.messages, "ack_timeout": o.ack_timeout})
    pairs = seeded.pairs[: o.pairs]
    if len(pairs) < o.pairs:
        raise BenchError(f"{o.pairs} pairs wanted, the seed file has {len(seeded.pairs)} (seed with --pairs)")
    chat_users: list[SeedUser] = []
    expect: dict[int, list[str]] = {}
    chat_senders: list[tuple[int, int]] = []
    for a, b in pairs:
        chat_users += [by_id[a], by_id[b]]
        conv = f"p{min(a, b)}_{max(a, b)}"
        expect[a] = [*expect.get(a, []), conv]
        expect[b] = [*expect.get(b, []), conv]
        chat_senders += [(a, b), (b, a)]
    return Plan(chat_users, expect, [Stream(10, chat_senders, o.rate / len(chat_senders))],
                {"kind": "chat", "duration": o.duration, "ack_timeout": o.ack_timeout})


def plan_mixed(o: Options, seeded: Seeded) -> Plan:
    """``users`` online with heartbeats; ``chat_fraction`` of them in friend pairs
    chatting at ``chat_rate`` in total; ``groups`` groups of ``group_size`` (members
    among the online users) receiving ``group_rate`` messages/s in total from
    ``group_senders`` members each."""
    if len(seeded.users) < o.users:
        raise BenchError(f"{o.users} users wanted, the seed file has {len(seeded.users)}")
    users = seeded.users[: o.users]
    online = {u.id for u in users}
    expect: dict[int, list[str]] = {}
    streams: list[Stream] = []
    n_pairs = int(o.users * o.chat_fraction) // 2
    if n_pairs and o.chat_rate > 0:
        pairs = [(a, b) for a, b in seeded.pairs if a in online and b in online][:n_pairs]
        if len(pairs) < n_pairs:
            raise BenchError(f"{n_pairs} friend pairs among the first {o.users} users wanted, the seed file has "
                             f"{len(pairs)} (seed with --pairs)")
        senders: list[tuple[int, int]] = []
        for a, b in pairs:
            conv = f"p{min(a, b)}_{max(a, b)}"
            expect.setdefault(a, []).append(conv)
            expect.setdefault(b, []).append(conv)
            senders += [(a, b), (b, a)]
        streams.append(Stream(10, senders, o.chat_rate / len(senders)))
    if o.groups and o.group_rate > 0:
        groups = [g for g in seeded.groups
                  if len(g.members) >= o.group_size and all(m in online for m in g.members[: o.group_size])]
        if len(groups) < o.groups:
            raise BenchError(f"{o.groups} groups of {o.group_size} online members wanted, the seed file has "
                             f"{len(groups)} (seed with --group-size and --groups)")
        senders = []
        for g in groups[: o.groups]:
            for m in g.members[: o.group_size]:
                expect.setdefault(m, []).append(f"g{g.id}")
            senders += [(m, g.id) for m in g.members[: min(o.group_senders, o.group_size)]]
        streams.append(Stream(11, senders, o.group_rate / len(senders)))
    if not streams:
        raise BenchError("nothing to send: give --chat-fraction/--chat-rate or --groups/--group-rate")
    # The server limits each user (all their sockets on a worker) to a rate with a burst.
    per_user: dict[int, float] = {}
    for st in streams:
        for uid, _ in st.senders:
            per_user[uid] = per_user.get(uid, 0.0) + st.rate
    limit = float(o.server_env.get("IMHUB_SEND_RATE_PER_SECOND", DEFAULT_SEND_RATE))
    busiest = max(per_user.values())
    if busiest > limit:
        raise BenchError(f"a sender would send {busiest:.1f} messages/s, over the server's per-user limit of "
                         f"{limit:g}/s (IMHUB_SEND_RATE_PER_SECOND): add chatting users or group senders, or "
                         f"lower the rates")
    return Plan(users, expect, streams,
                {"kind": "paced", "duration": o.duration, "ack_timeout": o.ack_timeout})


def worker_send(p: Plan, uids: set[int]) -> dict[str, Any]:
    """The send command of the worker holding ``uids``: its own senders, and for paced
    streams its share of each stream's rate (per-sender rate x its senders)."""
    if p.send is None:
        return {}
    mine = [(st, [(u, d) for u, d in st.senders if u in uids]) for st in p.streams]
    if p.send["kind"] == "fanout":
        return {**p.send, "senders": [x for _, ss in mine for x in ss]}
    if p.send["kind"] == "chat":
        st, ss = mine[0]
        return {**p.send, "rate": st.rate * len(ss), "senders": ss}
    return {**p.send, "streams": [{"cmd": st.cmd, "rate": st.rate * len(ss), "senders": ss} for st, ss in mine]}


def split(n: int, parts: int, even: bool = False) -> list[tuple[int, int]]:
    """``parts`` contiguous [start, end) ranges covering n (even-sized starts if asked)."""
    step = math.ceil(n / parts)
    if even and step % 2:
        step += 1
    out = []
    for i in range(parts):
        lo, hi = min(n, i * step), min(n, (i + 1) * step)
        out.append((lo, hi))
    return out


# --- live display ---------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


class Display:
    def __init__(self, quiet: bool, title: str) -> None:
        self.quiet = quiet
        self.title = title
        self.live: Any = None
        if not quiet:
            from rich.console import Console
            from rich.live import Live

            console = Console(stderr=True)
            if console.is_terminal:
                self.live = Live(console=console, refresh_per_second=4, transient=False)
                self.live.start()
            else:
                self.console = console
        self._last_plain = 0.0

    def update(self, state: dict[str, Any]) -> None:
        if self.quiet:
            return
        if self.live is not None:
            from rich.table import Table

            t = Table(title=self.title, show_header=False, box=None)
            t.add_column(style="bold")
            t.add_column()
            for k, v in state.items():
                t.add_row(k, str(v))
            self.live.update(t)
        elif time.monotonic() - self._last_plain >= 5:
            self._last_plain = time.monotonic()
            print("  " + ", ".join(f"{k} {v}" for k, v in state.items()), file=sys.stderr, flush=True)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()


# --- the run ------------------------------------------------------------------------------


class Coordinator:
    def __init__(self, o: Options) -> None:
        self.o = o
        self.deadline = time.monotonic() + o.max_seconds
        self.server: SpawnedServer | None = None
        self.nodes: list[SpawnedServer] = []  # --spawn: the server, and more with --server-nodes
        self.ports: list[int] = []  # the nodes' ports, when several
        self.server_pids: list[int] = []
        self.procs: list[Any] = []
        self.pipes: list[Connection] = []
        self.closed_workers: set[int] = set()  # sent "closed" (they exit right after)
        self.exited: set[int] = set()  # ... and their pipe has ended
        self.progress: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self.phases: list[list[Any]] = []  # [t, phase name] at each change
        self._phase = ""
        self.phase = "setup"
        self.expected_deliveries = 0
        self.timeline: list[list[float]] = []
        # pid -> {"label", "name", "cmdline", "rows": [[t, cpu_s, rss]]}: the server's
        # processes one by one (a supervisor and its workers), as they come and go.
        self.server_procs: dict[int, dict[str, Any]] = {}
        self._tl_every = 1  # record every n-th tick (doubles when the timeline is full)
        self._ticks = 0
        self.display = Display(o.quiet, f"imhub bench {o.scenario}")
        self._last_tick = 0.0
        self._last_sample: tuple[float, procstat.Sample, procstat.Sample] | None = None
        self._rates = (0.0, 0.0)

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, name: str) -> None:
        if name != self._phase:
            self._phase = name
            self.phases.append([round(time.monotonic() - self.t0, 2), name])
            if self.procs:  # the workers are up: a timeline row at each phase boundary
                self.tick(force=True)

    # sampling
    def server_sample(self) -> procstat.Sample:
        return procstat.sample(self.server_pids, pss=True)

    def client_sample(self) -> procstat.Sample:
        return procstat.sample([os.getpid(), *[p.pid for p in self.procs if p.pid]], tree=False)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_tick < TICK:
            return
        self._last_tick = now
        s, c = self.server_sample(), self.client_sample()
        if self._last_sample is not None:
            t, ps, pc = self._last_sample
            dt = max(1e-6, now - t)
            self._rates = ((s.cpu - ps.cpu) / dt * 100, (c.cpu - pc.cpu) / dt * 100)
        self._last_sample = (now, s, c)
        tot = self.totals()
        self._ticks += 1
        if force or self._ticks % self._tl_every == 0:
            self.record(now, s, c, tot)
        state = {
            "phase": self.phase,
            "elapsed": f"{now - self.t0:,.1f} s",
            "connected": f"{tot.get('connected', 0):,} of {self.n_users:,} (failed {tot.get('failed', 0)}, "
                         f"dropped {tot.get('dropped', 0)})",
            "sent / acked": f"{tot.get('sent', 0):,} / {tot.get('acked', 0):,} (errors {tot.get('errors', 0)})",
            "received": f"{tot.get('received', 0):,}"
                        + (f" of {self.expected_deliveries:,} expected" if self.expected_deliveries else ""),
            "heartbeats": f"{tot.get('hb_sent', 0):,} sent, {tot.get('hb_replies', 0):,} answered",
            "server": f"CPU {self._rates[0]:.0f}%, RSS {_mb(s.rss)} ({s.pids} proc)",
            "clients": f"CPU {self._rates[1]:.0f}%, {len(self.procs)} workers",
        }
        self.display.update(state)

    def record(self, now: float, s: procstat.Sample, c: procstat.Sample, tot: dict[str, int]) -> None:
        """One timeline row, and one row per server process."""
        t = round(now - self.t0, 2)
        procs = sorted(procstat.per_process(self.server_pids), key=lambda ps: ps.pid) if self.server_pids else []
        roots = set(self.server_pids)
        for ps in procs:
            entry = self.server_procs.get(ps.pid)
            if entry is None:
                entry = self.server_procs[ps.pid] = _describe(ps, roots, len(self.server_procs))
            entry["rows"].append([t, round(ps.cpu, 3), ps.rss])
        self.timeline.append([
            t, round(s.cpu, 3), s.rss, round(c.cpu, 3), c.rss, len(procs),
            *(tot.get(k, 0) for k in TIMELINE_COLUMNS[6:]),
        ])
        if len(self.timeline) >= MAX_TIMELINE:
            # Full: keep every other row from now on (long runs stay plottable).
            self.timeline = self.timeline[::2]
            kept = {row[0] for row in self.timeline}
            for entry in self.server_procs.values():
                entry["rows"] = [r for r in entry["rows"] if r[0] in kept]
            self._tl_every *= 2

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.progress:
            for k, v in p.items():
                if isinstance(v, int):
                    out[k] = out.get(k, 0) + v
        return out

    # messaging with workers
    def broadcast(self, kind: str, data: Any | Sequence[Any]) -> None:
        for i, p in enumerate(self.pipes):
            p.send((kind, data[i] if isinstance(data, list) else data))

    def _pump(self, timeout: float, on_msg: Callable[[int, str, Any], None]) -> None:
        left = min(timeout, self.deadline - time.monotonic())
        if left <= 0:
            raise BenchError(f"time limit reached in phase {self.phase}")
        ready = wait([p for i, p in enumerate(self.pipes) if i not in self.exited], timeout=min(TICK, left))
        for p in ready:
            assert isinstance(p, Connection)
            i = self.pipes.index(p)
            try:
                kind, data = p.recv()
            except (EOFError, OSError) as exc:
                self.procs[i].join(timeout=2)
                if i in self.closed_workers and self.procs[i].exitcode in (0, None):
                    # It reported "closed" and is exiting: the end of its pipe, not a
                    # death (others may still be closing). A worker that held ~15k
                    # sockets can take longer than the join above to exit on a busy
                    # box (seen at load 12); stop_workers() waits for it.
                    self.exited.add(i)
                    continue
                raise BenchError(f"worker {i} died (exit code {self.procs[i].exitcode}, {exc!r})") from None
            if kind == "closed":
                self.closed_workers.add(i)
            if kind == "progress":
                self.progress[i] = data
            elif kind == "error":
                raise BenchError(f"worker {i}: {data}")
            else:
                on_msg(i, kind, data)
        self.tick()

    def collect(self, kind: str, timeout: float) -> list[Any]:
        results: dict[int, Any] = {}
        end = time.monotonic() + timeout

        def on_msg(i: int, k: str, data: Any) -> None:
            if k == kind:
                results[i] = data
                if isinstance(data, dict):
                    self.progress[i] = {**self.progress[i], **{k2: v for k2, v in data.items() if isinstance(v, int)}}

        while len(results) < len(self.pipes):
            if time.monotonic() > end:
                raise BenchError(f"workers did not finish {kind!r} in {timeout:.0f}s")
            self._pump(end - time.monotonic(), on_msg)
        return [results[i] for i in range(len(self.pipes))]

    def wait_while(self, cond: Callable[[], bool], timeout: float) -> None:
        end = time.monotonic() + timeout
        while cond() and time.monotonic() < end:
            self._pump(max(0.01, end - time.monotonic()), lambda i, k, d: None)

    # phases
    def setup_server(self) -> tuple[str, int, Seeded]:
        o = self.o
        if o.spawn:
            data_dir = o.data_dir or Path(tempfile.mkdtemp(prefix="imhub-bench-"))
            data_dir.mkdir(parents=True, exist_ok=True)
            env = dict(o.server_env)
            if env.get("IMHUB_BUS") == "redis" and "IMHUB_REDIS_PREFIX" not in env:
                # Keys of this run only, deleted when it ends (see cleanup_redis).
                env["IMHUB_REDIS_PREFIX"] = f"imhub-bench-{os.urandom(4).hex()}"
            if o.server_nodes > 1 and env.get("IMHUB_BUS") != "redis":
                raise BenchError("--server-nodes needs --server-env IMHUB_BUS=redis")
            self.server = SpawnedServer(data_dir, o.server_workers, o.server_log_level, env)
            # Further nodes: their own data directory, the first one's database.
            self.nodes = [self.server] + [
                SpawnedServer(data_dir / f"node{i}", o.server_workers, o.server_log_level,
                              {**env, "IMHUB_DATABASE_URL": self.server.database_url})
                for i in range(1, o.server_nodes)
            ]
            self.phase = "seeding"
            t = time.monotonic()
            seeded = asyncio.run(
                _migrate_and_seed(self.server.database_url, {**seed_needs(o), "password": o.password})
            )
            self.seed_seconds = time.monotonic() - t
            self.phase = "starting server"
            self.server_pids = []
            for node in self.nodes:
                node.start()
                assert node.proc is not None
                self.server_pids.append(node.proc.pid)
            self.ports = [node.port for node in self.nodes]
            return "127.0.0.1", self.server.port, seeded
        if not o.url or not o.users_file:
            raise BenchError("give --spawn, or --url with --users (a file from `imhub user seed`)")
        if not o.server_pids:
            raise BenchError("--server-pid is needed with --url (to measure the server)")
        parts = urlsplit(o.url)
        host = parts.hostname or "127.0.0.1"
        if not host.startswith("127.") and host != "localhost":
            raise BenchError("the bench only targets loopback addresses (127.0.0.0/8)")
        self.server_pids = list(o.server_pids)
        self.seed_seconds = 0.0
        return host, parts.port or 80, Seeded.read(o.users_file)

    def start_workers(self, host: str, port: int, p: Plan) -> None:
        o = self.o
        n = len(p.users)
        self.n_users = n
        w = o.workers or max(1, math.ceil(n / o.per_worker))
        if math.ceil(n / w) > 19_000:
            raise BenchError("more than 19,000 sockets per worker would hit the fd limit: add --workers")
        k = o.source_ips if o.source_ips >= 0 else (math.ceil(n / o.per_ip) if n > o.per_ip else 0)
        ips = [f"127.0.0.{i + 2}" for i in range(k)]
        ctx = mp.get_context("spawn")
        run_id = os.urandom(4).hex()
        self.worker_sends: list[dict[str, Any]] = []
        for i, (lo, hi) in enumerate(split(n, w, even=o.scenario in ("chat", "mixed"))):
            users = p.users[lo:hi]
            cfg = WorkerConfig(
                index=i, host=host, port=port, users=[(u.id, u.token) for u in users], offset=lo,
                source_ips=ips, per_ip=o.per_ip, autosync=o.autosync, connect_rate=o.connect_rate / w,
                concurrency=max(1, o.concurrency // w), handshake_timeout=o.handshake_timeout,
                heartbeat=o.heartbeat, expect={u.id: p.expect[u.id] for u in users if u.id in p.expect},
                max_seconds=max(10.0, self.deadline - time.monotonic()), run_id=run_id,
                ports=self.ports if len(self.ports) > 1 else [],
            )
            self.worker_sends.append(worker_send(p, {u.id for u in users}))
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(cfg, child), name=f"imhub-bench-{i}", daemon=True)
            proc.start()
            child.close()
            self.procs.append(proc)
            self.pipes.append(parent)
            self.progress.append({})
        self.source_ips = ips

    def stop_workers(self) -> None:
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)

    def run(self) -> tuple[dict[str, Any], int]:
        o = self.o
        self.n_users = 0
        result: dict[str, Any] = {
            "scenario": o.scenario,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine_info(),
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in o.__dict__.items()},
        }
        failed = False
        try:
            host, port, seeded = self.setup_server()
            p = plan(o, seeded)
            result["server"] = {
                "url": f"http://{host}:{port}", "pids": self.server_pids, "spawned": o.spawn,
                "workers": o.server_workers if o.spawn else None, "seed_seconds": round(self.seed_seconds, 2),
                "nodes": len(self.nodes) or 1, "ports": self.ports,
            }
            if self.server is not None:
                result["server"]["data_dir"] = str(self.server.data_dir)
                if "IMHUB_REDIS_PREFIX" in self.server.env:
                    result["server"]["redis_prefix"] = self.server.env["IMHUB_REDIS_PREFIX"]
            base = self.server_sample()
            self.start_workers(host, port, p)
            result["clients"] = {"workers": len(self.procs), "source_ips": self.source_ips}
            time.sleep(0.5)  # let the workers import and start their loops
            before = self.server_sample()
            cb = self.client_sample()

            # --- connect
            self.phase = "connect"
            t = time.monotonic()
            self.broadcast("connect", {})
            conn_results = self.collect("connected", timeout=o.max_seconds)
            wall = time.monotonic() - t
            time.sleep(1.0)  # let in-flight server work (logs, GC) settle before measuring memory
            after = self.server_sample()
            ca = self.client_sample()
            connected = sum(r["connected"] for r in conn_results)
            failures: dict[str, int] = {}
            for r in conn_results:
                for k, v in r["failures"].items():
                    failures[k] = failures.get(k, 0) + v
            result["connect"] = {
                "users": len(p.users),
                "connected": connected,
                "failed": sum(failures.values()),
                "failures": failures,
                "seconds": round(wall, 3),
                "rate_per_s": round(connected / wall, 1) if wall else 0,
                "handshake_ms": [r["handshake_ms"] for r in conn_results],
                "server_rss_base": base.rss,
                "server_rss_before": before.rss,
                "server_rss_after": after.rss,
                "server_rss_per_conn_bytes": round((after.rss - before.rss) / connected) if connected else None,
                # PSS: forked workers share their imports; RSS counts those pages in each.
                "server_pss_before": before.pss,
                "server_pss_after": after.pss,
                "server_pss_per_conn_bytes": round((after.pss - before.pss) / connected) if connected else None,
                "server_cpu_s": round(after.cpu - before.cpu, 3),
                "server_cpu_per_handshake_us": round((after.cpu - before.cpu) / connected * 1e6, 1)
                if connected else None,
                "client_cpu_s": round(ca.cpu - cb.cpu, 3),
            }
            if failures:
                failed = True

            # --- hold
            if o.hold > 0:
                self.phase = f"hold {o.hold:.0f}s"
                h0, c0 = self.server_sample(), self.client_sample()
                t = time.monotonic()
                self.wait_while(lambda: True, o.hold)
                h1, c1 = self.server_sample(), self.client_sample()
                held = time.monotonic() - t
                tot = self.totals()
                result["hold"] = {
                    "seconds": round(held, 2),
                    "connected_at_end": tot.get("connected", 0),
                    "server_cpu_s": round(h1.cpu - h0.cpu, 3),
                    "server_cpu_percent": round((h1.cpu - h0.cpu) / held * 100, 2),
                    "server_rss_end": h1.rss,
                    "server_pss_end": h1.pss,
                    "client_cpu_s": round(c1.cpu - c0.cpu, 3),
                    "heartbeats_sent": tot.get("hb_sent", 0),
                    "heartbeats_answered": tot.get("hb_replies", 0),
                }

            # --- reconnect storm
            if o.storm:
                failed = self.run_storm(result) or failed

            # --- send + verify
            if p.send is not None:
                self.send_and_verify(p, result)
                v = result["verify"]
                s = result["send"]
                failed = failed or bool(v["lost"] or v["duplicated"] or v["out_of_order"]
                                        or s["acked"] != s["sent"] or s["errors"] or s["send_failed"])

            # --- close
            self.phase = "closing"
            self.broadcast("close", {})
            closed = self.collect("closed", timeout=30)
            drops: dict[str, int] = {}
            for r in closed:
                for k, v in r["drops"].items():
                    drops[k] = drops.get(k, 0) + v
            result["close"] = {"dropped": sum(drops.values()), "drops": drops,
                               "heartbeats_sent": sum(r["hb_sent"] for r in closed),
                               "heartbeats_answered": sum(r["hb_replies"] for r in closed)}
            if drops:
                failed = True
            self.phase = "done"
            self.tick(force=True)
        except BenchError as exc:
            result["error"] = str(exc)
            if self.server is not None:
                result["server_log_tail"] = self.server.tail()
        finally:
            self.display.stop()
            for pipe in self.pipes:
                pipe.close()
            self.stop_workers()
            end = self.server_sample() if self.server_pids else None
            if self.server is not None:
                for node in self.nodes[1:]:
                    node.stop()
                self.server.stop()
                deleted = cleanup_redis(self.server.env)
                if deleted and "server" in result:
                    result["server"]["redis_keys_deleted"] = deleted
            result["timeline"] = {
                "columns": TIMELINE_COLUMNS,
                "rows": self.timeline,
                "phases": self.phases,
                "server_procs": {str(pid): e for pid, e in self.server_procs.items()},
            }
            result["machine"]["loadavg_end"] = os.getloadavg()
            if end is not None and "server" in result:
                result["server"]["rss_end"] = end.rss
        result["report"] = report_line(result)
        code = 3 if "error" in result else (1 if failed else 0)
        result["exit_code"] = code
        if o.json_out:
            o.json_out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
        return result, code

    def run_storm(self, result: dict[str, Any]) -> bool:
        """Every client loses its socket at once (``--storm drop``: the clients abort
        them; ``kill``: the server's workers are killed) and comes back with backoff;
        measures how long until all are back, failed attempts and the server CPU per
        reconnect (its disconnect included). True if some never came back."""
        o = self.o
        self.phase = f"storm {o.storm}"
        s0, c0 = self.server_sample(), self.client_sample()
        t = time.monotonic()
        w = len(self.pipes)
        spec = {"drop": o.storm == "drop", "base": o.storm_base, "cap": o.storm_cap,
                "concurrency": max(1, o.storm_concurrency // w), "timeout": o.storm_timeout}
        self.broadcast("storm", spec)
        if o.storm == "kill":
            self.wait_while(lambda: True, 0.3)  # the workers are in storm mode
            t = time.monotonic()
            self.kill_server_workers()
        stormed = self.collect("stormed", timeout=o.storm_timeout + 30)
        wall = max(r["elapsed"] for r in stormed)
        s1, c1 = self.server_sample(), self.client_sample()
        lost = sum(r["lost"] for r in stormed)
        back = lost - sum(r["not_back"] for r in stormed)
        failures: dict[str, int] = {}
        for r in stormed:
            for k, v in r["failures"].items():
                failures[k] = failures.get(k, 0) + v
        cpu = s1.cpu - s0.cpu
        result["storm"] = {
            "mode": o.storm,
            "lost": lost,
            "back": back,
            "not_back": lost - back,
            "all_back_seconds": round(wall, 3),
            "rate_per_s": round(back / wall, 1) if wall else None,
            "attempts": sum(r["attempts"] for r in stormed),
            "failed_attempts": sum(failures.values()),
            "failures": failures,
            "back_seconds": [r["back_s"] for r in stormed],
            "server_cpu_s": round(cpu, 3),
            "server_cpu_per_reconnect_us": round(cpu / back * 1e6, 1) if back else None,
            "server_rss_after": s1.rss,
            "server_pss_after": s1.pss,
            "client_cpu_s": round(c1.cpu - c0.cpu, 3),
            "t_start": round(t - self.t0, 2),
            "options": spec,
        }
        self.phase = "back"
        return bool(back < lost)

    def kill_server_workers(self) -> None:
        """SIGKILL every server worker (the supervisors fork new ones), or a single
        spawned server, which is then started again on its port."""
        workers = [pid for pid in procstat.descendants(self.server_pids) if pid not in self.server_pids]
        if workers:
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return
        if not self.nodes:
            raise BenchError("--storm kill on a single-process server needs --spawn (to start it again)")
        self.server_pids = []
        for node in self.nodes:
            node.kill()
            node.start()
            assert node.proc is not None
            self.server_pids.append(node.proc.pid)

    def send_and_verify(self, p: Plan, result: dict[str, Any]) -> None:
        o = self.o
        assert p.send is not None
        self.phase = "send"
        s0, c0 = self.server_sample(), self.client_sample()
        t = time.monotonic()
        warm_until = time.monotonic_ns() + int(o.warmup * 1e9)  # CLOCK_MONOTONIC: one clock for every process
        self.broadcast("send", [{**w, "warmup_until_ns": warm_until} for w in self.worker_sends])
        paced = p.send["kind"] != "fanout"
        sent = self.collect("sent", timeout=o.ack_timeout + (o.duration if paced else 0) + 30)
        t_acked = time.monotonic() - t
        acked_by_conv: dict[str, list[tuple[int, int]]] = {}
        for r in sent:
            for conv, seqs in r["acked_by_conv"].items():
                acked_by_conv.setdefault(conv, []).extend(seqs)
        # How many deliveries to wait for: each acked message goes to every expecting
        # user of its conversation except its sender.
        receivers: dict[str, int] = {}
        for convs in p.expect.values():
            for c in convs:
                receivers[c] = receivers.get(c, 0) + 1
        self.expected_deliveries = sum(receivers.get(c, 0) * len(v) - len(v) for c, v in acked_by_conv.items())
        by_kind: dict[str, dict[str, int]] = {}
        for c, v in acked_by_conv.items():
            k = by_kind.setdefault("group" if c.startswith("g") else "1:1", {"acked": 0, "deliveries_expected": 0})
            k["acked"] += len(v)
            k["deliveries_expected"] += receivers.get(c, 0) * len(v) - len(v)
        self.phase = "deliver"
        self.wait_while(lambda: self.totals().get("received", 0) < self.expected_deliveries, o.settle_timeout)
        t_delivered = time.monotonic() - t
        s1, c1 = self.server_sample(), self.client_sample()
        self.phase = "verify"
        self.broadcast("verify", acked_by_conv)
        ver = self.collect("verified", timeout=120)
        ack_lat = [x for r in sent for x in r["ack_lat_ms"]]
        recv_lat = [x for r in ver for x in r["recv_lat_ms"]]
        errors: dict[str, int] = {}
        for r in sent:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        n_sent = sum(r["sent"] for r in sent)
        n_acked = sum(r["acked"] for r in sent)
        delivered = sum(r["delivered"] for r in ver)
        send_seconds = max(r["send_seconds"] for r in sent)
        cpu = s1.cpu - s0.cpu
        result["send"] = {
            "sent": n_sent,
            "acked": n_acked,
            "unacked": sum(r["unacked"] for r in sent),
            "send_failed": sum(r["send_failed"] for r in sent),
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "dup_acks": sum(r["dup_acks"] for r in sent),
            "send_seconds": round(send_seconds, 3),
            "all_acked_seconds": round(t_acked, 3),
            "all_delivered_seconds": round(t_delivered, 3),
            "send_rate_per_s": round(n_sent / send_seconds, 1) if send_seconds else None,
            "ack_rate_per_s": round(n_acked / t_acked, 1) if t_acked else None,
            "delivery_rate_per_s": round(delivered / t_delivered, 1) if t_delivered else None,
            "ack_latency_ms": _percentiles(ack_lat),
            "send_to_receive_ms": _percentiles(recv_lat),
            "server_cpu_s": round(cpu, 3),
            "server_cpu_per_delivery_us": round(cpu / delivered * 1e6, 2) if delivered else None,
            "server_cpu_per_message_us": round(cpu / n_acked * 1e6, 2) if n_acked else None,
            "server_user_s": round(s1.user - s0.user, 3),
            "server_system_s": round(s1.system - s0.system, 3),
            "server_rss_end": s1.rss,
            "client_cpu_s": round(c1.cpu - c0.cpu, 3),
            "client_cpu_per_delivery_us": round((c1.cpu - c0.cpu) / delivered * 1e6, 2) if delivered else None,
            "by_kind": by_kind,
            "t_start": round(t - self.t0, 2),  # on the timeline's clock
        }
        if o.warmup > 0:
            result["send"]["after_warmup"] = {
                "warmup_seconds": o.warmup,
                "ack_latency_ms": _percentiles([x for r in sent for x in r["ack_lat_steady_ms"]]),
                "send_to_receive_ms": _percentiles([x for r in ver for x in r["recv_lat_steady_ms"]]),
            }
        # Log-binned histograms of every sample, for the report's CDFs.
        result["latency"] = {"ack_ms": _histogram(ack_lat), "send_to_receive_ms": _histogram(recv_lat)}
        result["verify"] = {
            "expected": sum(r["expected"] for r in ver),
            "delivered": delivered,
            "lost": sum(r["lost"] for r in ver),
            "duplicated": sum(r["duplicated"] for r in ver),
            "out_of_order": sum(r["out_of_order"] for r in ver),
            "gaps": sum(r["gaps"] for r in ver),
            "unexpected": sum(r["unexpected"] for r in ver),
            "examples": [e for r in ver for e in r["examples"]][:10],
        }


def report_line(result: dict[str, Any]) -> str:
    if "verify" in result:
        s, v = result["send"], result["verify"]
        return (f"sent {s['sent']}, acked {s['acked']}, delivered {v['delivered']} of {v['expected']} expected, "
                f"lost {v['lost']}, duplicated {v['duplicated']}, out-of-order {v['out_of_order']}")
    if "connect" in result:
        c = result["connect"]
        dropped = result.get("close", {}).get("dropped", 0)
        line = f"connected {c['connected']} of {c['users']}, failed {c['failed']}, dropped {dropped}"
        if "storm" in result:
            st = result["storm"]
            line += f", storm: {st['back']} of {st['lost']} back, {st['not_back']} not back"
        return line
    return f"bench failed: {result.get('error', 'unknown error')}"


def _describe(ps: procstat.ProcSample, roots: set[int], seen: int) -> dict[str, Any]:
    """How a server process is called in the report: ``supervisor`` or ``server`` (a
    root pid, with or without children), ``worker #K`` (a child of a root, the K-th
    process seen), else its command name."""
    cmd = procstat.cmdline(ps.pid)
    if ps.pid in roots:
        label = "supervisor" if _has_children(ps.pid) else "server"
    elif ps.ppid in roots:
        label = f"worker #{seen}"
    else:
        label = ps.name
    return {"label": f"{label} (pid {ps.pid})", "name": ps.name, "cmdline": cmd[:200],
            "columns": ["t", "cpu_s", "rss"], "rows": []}


def _has_children(pid: int) -> bool:
    return len(procstat.descendants([pid])) > 1


def machine_info() -> dict[str, Any]:
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except OSError:
        pass
    return {
        "host": platform.node(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "mem_bytes": mem,
        "loadavg_start": os.getloadavg(),
    }


def run(o: Options) -> tuple[dict[str, Any], int]:
    return Coordinator(o).run()
