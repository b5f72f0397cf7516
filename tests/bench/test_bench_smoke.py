"""A small ``imhub bench`` run end to end: seed users into a running server's database,
fan out to a 50-member group, run a short 1:1 chat and a short mixed load (200 online,
pairs chatting, a group receiving), and hold a few connections on a server the bench
spawns itself. Every run must verify clean (nothing lost, duplicated or out of order)
and the JSON result must agree with the report line; the HTML reports (from a result
file, and with --report after a run) must carry their plots."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import port_open, service_unavailable
from tests.redisproc import RedisServer
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow

REPORT = re.compile(
    r"^sent (\d+), acked (\d+), delivered (\d+) of (\d+) expected, lost (\d+), duplicated (\d+), out-of-order (\d+)$",
    re.M,
)
PNG = "src='data:image/png;base64,"


def imhub(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imhub", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("bench") / "data", IMHUB_LOG_LEVEL="warning").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def seed_file(server: ServerProcess) -> Path:
    out = server.data_dir / "seed.jsonl"
    r = imhub("user", "seed", "--count", "200", "--pairs", "--group-size", "50", "--groups", "1",
              "--out", str(out), env=server.env)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    users = [x for x in lines if "token" in x]
    assert len(users) == 200 and all(set(u) == {"id", "token", "mobile"} for u in users)
    assert sum("pair" in x for x in lines) == 100
    groups = [x for x in lines if "group" in x]
    assert len(groups) == 1 and len(groups[0]["members"]) == 50 and groups[0]["owner"] == groups[0]["members"][0]
    return out


def run_bench(server: ServerProcess, seed_file: Path, tmp_path: Path, *args: str) -> tuple[dict, tuple[int, ...]]:
    out = tmp_path / "result.json"
    assert server.proc is not None
    r = imhub("bench", *args, "--url", server.url, "--server-pid", str(server.proc.pid), "--users", str(seed_file),
              "--json", str(out), "--quiet", "--max-seconds", "60")
    assert r.returncode == 0, r.stdout + r.stderr
    m = REPORT.search(r.stdout)
    assert m, r.stdout
    result = json.loads(out.read_text())
    assert result["report"] == m.group(0)
    return result, tuple(int(x) for x in m.groups())


def test_fanout_to_a_50_member_group(server: ServerProcess, seed_file: Path, tmp_path: Path) -> None:
    result, (sent, acked, delivered, expected, lost, dup, ooo) = run_bench(
        server, seed_file, tmp_path, "fanout", "--group-size", "50", "--messages", "20"
    )
    assert (sent, acked) == (20, 20)
    assert delivered == expected == 20 * 49
    assert (lost, dup, ooo) == (0, 0, 0)
    assert result["connect"]["connected"] == 50
    assert result["send"]["server_cpu_per_delivery_us"] > 0
    assert result["send"]["send_to_receive_ms"]["n"] == 20 * 49


def test_short_chat_run(server: ServerProcess, seed_file: Path, tmp_path: Path) -> None:
    result, (sent, acked, delivered, expected, lost, dup, ooo) = run_bench(
        server, seed_file, tmp_path, "chat", "--pairs", "50", "--rate", "200", "--duration", "2", "--warmup", "1"
    )
    assert sent >= 300 and acked == sent
    assert delivered == expected == sent
    assert (lost, dup, ooo) == (0, 0, 0)
    assert result["send"]["ack_latency_ms"]["n"] == sent
    # --warmup: the second half of the sends (200/s for 2 s, the first 1 s left out)
    steady = result["send"]["after_warmup"]
    assert steady["warmup_seconds"] == 1.0
    assert 0.3 * sent < steady["ack_latency_ms"]["n"] < 0.7 * sent
    assert steady["send_to_receive_ms"]["n"] == steady["ack_latency_ms"]["n"]


def test_mixed_load_and_its_report(server: ServerProcess, seed_file: Path, tmp_path: Path) -> None:
    result, (sent, acked, delivered, expected, lost, dup, ooo) = run_bench(
        server, seed_file, tmp_path, "mixed", "--count", "200", "--chat-fraction", "0.5", "--chat-rate", "100",
        "--groups", "1", "--group-size", "50", "--group-rate", "10", "--group-senders", "2", "--duration", "3",
        "--heartbeat", "0.5", "1",
    )
    assert (lost, dup, ooo) == (0, 0, 0)
    kinds = result["send"]["by_kind"]
    assert kinds["1:1"]["acked"] >= 250 and kinds["group"]["acked"] >= 25
    assert sent == acked == kinds["1:1"]["acked"] + kinds["group"]["acked"]
    # Each 1:1 message reaches one peer, each group message the 49 other members.
    assert expected == kinds["1:1"]["acked"] + 49 * kinds["group"]["acked"] == delivered
    assert result["connect"]["connected"] == 200
    # The timeline: old columns first, cumulative counters that end at the totals,
    # one series per server process, and histograms holding every latency sample.
    tl = result["timeline"]
    assert tl["columns"][:4] == ["t", "server_cpu_s", "server_rss", "client_cpu_s"]
    last = dict(zip(tl["columns"], tl["rows"][-1], strict=True))
    assert last["sent"] == sent and last["acked"] == acked and last["received"] >= delivered
    assert last["hb_replies"] > 0
    assert max(row[tl["columns"].index("connected")] for row in tl["rows"]) == 200
    assert [name for _, name in tl["phases"]][-1] == "done"
    procs = list(tl["server_procs"].values())
    assert len(procs) == 1 and procs[0]["label"].startswith("server") and len(procs[0]["rows"]) > 2
    assert sum(result["latency"]["ack_ms"]["counts"]) == acked
    assert sum(result["latency"]["send_to_receive_ms"]["counts"]) == result["send"]["send_to_receive_ms"]["n"]

    json_file, html_file = tmp_path / "result.json", tmp_path / "report.html"
    r = imhub("bench", "report", str(json_file), "-o", str(html_file))
    assert r.returncode == 0, r.stdout + r.stderr
    page = html_file.read_text()
    # connections, throughput, latency, server CPU and RSS per process
    assert page.count(PNG) == 5
    assert result["report"] in page
    for title in ("Connections over time", "Throughput", "Latency", "Server CPU per process",
                  "Server RSS per process"):
        assert f"<figcaption>{title}</figcaption>" in page


def test_connect_and_hold_on_a_spawned_server(tmp_path: Path) -> None:
    """Two workers under a supervisor, Redis bus and presence (the 100k setup, small)."""
    if not port_open("127.0.0.1", 6379):
        service_unavailable("Redis", "nothing listens on 127.0.0.1:6379")
    out, page = tmp_path / "connect.json", tmp_path / "connect.html"
    r = imhub("bench", "connect", "--spawn", "--data-dir", str(tmp_path / "data"), "--count", "200", "--hold", "2",
              "--server-workers", "2", "--server-env", "IMHUB_BUS=redis",
              "--server-env", f"IMHUB_REDIS_PREFIX=bench-smoke-{uuid.uuid4().hex[:8]}",
              "--heartbeat", "0.5", "1", "--json", str(out), "--report", str(page), "--quiet", "--max-seconds", "60")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "connected 200 of 200, failed 0, dropped 0" in r.stdout.splitlines()[-1]
    result = json.loads(out.read_text())
    assert result["connect"]["server_rss_per_conn_bytes"] > 0
    # The workers are forked from the supervisor and share its imports: counted once
    # in PSS, once per process in RSS.
    assert 0 < result["hold"]["server_pss_end"] < 0.7 * result["hold"]["server_rss_end"]
    assert result["hold"]["heartbeats_answered"] > 0
    assert result["close"]["dropped"] == 0
    # No messages in this scenario: every plot but the latency one.
    html = page.read_text()
    assert html.count(PNG) == 4 and "<figcaption>Latency</figcaption>" not in html


def test_reconnect_storm_after_the_workers_are_killed(tmp_path: Path) -> None:
    """--storm kill: both server workers die at once, the supervisor forks new ones and
    every client comes back (with backoff) before the run ends."""
    if not port_open("127.0.0.1", 6379):
        service_unavailable("Redis", "nothing listens on 127.0.0.1:6379")
    out = tmp_path / "storm.json"
    r = imhub("bench", "connect", "--spawn", "--data-dir", str(tmp_path / "data"), "--count", "100", "--hold", "0.5",
              "--server-workers", "2", "--server-env", "IMHUB_BUS=redis", "--storm", "kill",
              "--storm-backoff", "0.2", "2", "--json", str(out), "--quiet", "--max-seconds", "90")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1].endswith("storm: 100 of 100 back, 0 not back")
    storm = json.loads(out.read_text())["storm"]
    assert storm["lost"] == storm["back"] == 100
    assert storm["attempts"] == 100 + storm["failed_attempts"]
    assert storm["all_back_seconds"] > 0


def test_mixed_on_two_workers_with_redis(tmp_path: Path) -> None:
    """The issue's smoke run: 200 users, 2 workers, messages crossing workers through
    Redis; every 1:1 and group message acked and delivered exactly once, in order."""
    if not port_open("127.0.0.1", 6379):
        service_unavailable("Redis", "nothing listens on 127.0.0.1:6379")
    out = tmp_path / "mixed.json"
    # No IMHUB_REDIS_PREFIX: the bench picks one of its own and deletes its keys after.
    r = imhub("bench", "mixed", "--spawn", "--data-dir", str(tmp_path / "data"), "--server-workers", "2",
              "--server-env", "IMHUB_BUS=redis",
              "--count", "200", "--chat-fraction", "0.5", "--chat-rate", "100", "--groups", "1", "--group-size", "50",
              "--group-rate", "10", "--group-senders", "2", "--duration", "3", "--heartbeat", "0.5", "1",
              "--json", str(out), "--quiet", "--max-seconds", "90")
    assert r.returncode == 0, r.stdout + r.stderr
    m = REPORT.search(r.stdout)
    assert m, r.stdout
    sent, acked, delivered, expected, lost, dup, ooo = (int(x) for x in m.groups())
    assert sent == acked and sent >= 250
    assert delivered == expected and (lost, dup, ooo) == (0, 0, 0)
    result = json.loads(out.read_text())
    procs = [p["label"] for p in result["timeline"]["server_procs"].values()]
    assert sum(label.startswith("worker") for label in procs) == 2, procs
    prefix = result["server"]["redis_prefix"]
    assert prefix.startswith("imhub-bench-")
    left = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        assert list(left.scan_iter(match=f"{prefix}:*")) == []
    finally:
        left.close()


def test_mixed_on_two_nodes_and_two_redis_shards(tmp_path: Path) -> None:
    """--server-nodes 2: two servers on one database, the bus and presence on two Redis
    shards; users alternate between the nodes, so every 1:1 pair crosses them. Every
    message exactly once, in order; the bench's keys are gone from both shards after."""
    if not port_open("127.0.0.1", 6379):
        service_unavailable("Redis", "nothing listens on 127.0.0.1:6379")
    if not RedisServer.available():
        service_unavailable("redis-server", "not installed")
    shard = RedisServer(tmp_path / "redis").start()
    try:
        out = tmp_path / "mixed.json"
        r = imhub("bench", "mixed", "--spawn", "--data-dir", str(tmp_path / "data"), "--server-nodes", "2",
                  "--server-env", "IMHUB_BUS=redis",
                  "--server-env", f"IMHUB_REDIS_URL=redis://127.0.0.1:6379/0,{shard.url}",
                  "--count", "100", "--chat-fraction", "0.5", "--chat-rate", "50", "--groups", "1",
                  "--group-size", "20", "--group-rate", "5", "--duration", "2", "--heartbeat", "0.5", "1",
                  "--json", str(out), "--quiet", "--max-seconds", "90")
        assert r.returncode == 0, r.stdout + r.stderr
        m = REPORT.search(r.stdout)
        assert m, r.stdout
        sent, acked, delivered, expected, lost, dup, ooo = (int(x) for x in m.groups())
        assert sent == acked and sent >= 80
        assert delivered == expected and (lost, dup, ooo) == (0, 0, 0)
        result = json.loads(out.read_text())
        assert result["server"]["nodes"] == 2 and len(set(result["server"]["ports"])) == 2
        assert len(result["server"]["pids"]) == 2
        prefix = result["server"]["redis_prefix"]
        for url in ("redis://127.0.0.1:6379/0", shard.url):
            left = redis.Redis.from_url(url)
            try:
                assert list(left.scan_iter(match=f"{prefix}:*")) == []
            finally:
                left.close()
    finally:
        shard.stop()


def test_cleanup_deletes_only_the_keys_of_the_benchs_own_prefix() -> None:
    if not port_open("127.0.0.1", 6379):
        service_unavailable("Redis", "nothing listens on 127.0.0.1:6379")
    from imhub.bench.runner import cleanup_redis

    mine, theirs = f"imhub-bench-{uuid.uuid4().hex[:8]}", f"someone-{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        r.mset({f"{mine}:p:{i}": 1 for i in range(2500)} | {f"{theirs}:p:1": 1, f"{mine}x:p:1": 1})
        env = {"IMHUB_BUS": "redis", "IMHUB_REDIS_PREFIX": mine}
        assert cleanup_redis(env) == 2500
        assert list(r.scan_iter(match=f"{mine}:*")) == []
        assert r.exists(f"{theirs}:p:1", f"{mine}x:p:1") == 2
        # a prefix the user chose is theirs to keep
        assert cleanup_redis({"IMHUB_BUS": "redis", "IMHUB_REDIS_PREFIX": theirs}) == 0
        assert r.exists(f"{theirs}:p:1") == 1
    finally:
        r.delete(f"{theirs}:p:1", f"{mine}x:p:1")
        r.close()
