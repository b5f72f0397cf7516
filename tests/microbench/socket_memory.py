"""What one idle authenticated WebSocket costs the server, by component (tracemalloc).

    .venv/bin/python -m tests.microbench.socket_memory --count 2000

Seeds ``count`` users in a fresh data directory, serves the app in this process
(uvloop, one worker, SQLite, local bus), and connects ``count`` clients from a child
process: upgrade (``v=2``, ``autosync=0``), one heartbeat, then idle. Python memory
allocated in the server between before and after the connects (after ``gc.collect``)
is grouped by the file that allocated it and divided by ``count``. Objects allocated by
C code outside any Python frame (uvloop's transports) are charged to the frame that
runs the loop (asyncio/runners.py). Kernel socket buffers are not Python memory and not in PSS.
Not collected by pytest (no ``test_`` prefix): it is a measurement, not a check.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import uvloop
from aiohttp import web

CLIENT = r"""
import asyncio, base64, json, os, sys
users = [json.loads(line) for line in open(sys.argv[1]) if '"token"' in line][int(sys.argv[4]):][: int(sys.argv[3])]
port = int(sys.argv[2])
HB = b'{"cmd":0}'
def masked(payload):
    key = os.urandom(4)
    return bytes((0x81, 0x80 | len(payload))) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
async def one(u, sem, held):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        w.write((f"GET /chat?id={u['id']}&token={u['token']}&autosync=0&v=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n").encode() + masked(HB))
        head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        b0, b1 = await r.readexactly(2)
        await r.readexactly(b1 & 0x7F)
        held.append((r, w))
async def main():
    sem, held = asyncio.Semaphore(100), []
    await asyncio.gather(*(one(u, sem, held) for u in users))
    print("ready", len(held), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""

COMPONENTS = [
    ("uvloop transports (C, charged to the frame running the loop)", ("/asyncio/runners.py", "socket_memory.py")),
    ("aiohttp (request, WebSocketResponse, reader/writer, handler)", ("/aiohttp/",)),
    ("multidict / yarl (headers, URL)", ("/multidict/", "/yarl/")),
    ("imhub gateway (Connection, hub, node)", ("/imhub/gateway/",)),
    ("imhub web (chat handler / ChatSocket, middleware)", ("/imhub/web/",)),
    ("imhub protocol (Session, frame reader)", ("/imhub/protocol/",)),
    ("imhub bus (presence)", ("/imhub/bus/",)),
    ("imhub services / store", ("/imhub/services/", "/imhub/store/")),
    ("asyncio (tasks, futures, handles)", ("/asyncio/",)),
    ("structlog / logging", ("/structlog/", "/logging/")),
]


def component(filename: str) -> str:
    for name, parts in COMPONENTS:
        if any(p in filename for p in parts):
            return name
    return "other"


def pss_kb() -> int:
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


async def measure(count: int, data_dir: Path, users_file: Path, lines: int) -> None:
    # Imported after IMHUB_* are set (settings are read at import in places).
    from imhub.app import build_app
    from imhub.config import Settings

    app = build_app(Settings())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    # Warm up every code path with a few sockets first, so one-off allocations (caches,
    # interned strings, first-use imports) are not charged to the measured ones.
    warm = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(users_file), str(port), "20", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, warm.stdout.readline)  # type: ignore[union-attr]
    warm.stdin.close()  # type: ignore[union-attr]
    warm.wait()
    await asyncio.sleep(1.0)
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    pss_before = pss_kb()
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(users_file), str(port), str(count), "20"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    ready = await loop.run_in_executor(None, client.stdout.readline)  # type: ignore[union-attr]
    await asyncio.sleep(2.0)  # the last replies flushed, handler tasks finished
    gc.collect()
    after = tracemalloc.take_snapshot()
    pss_after = pss_kb()
    stats = after.compare_to(before, "filename")
    by_component: dict[str, int] = {}
    for s in stats:
        name = component(s.traceback[0].filename)
        by_component[name] = by_component.get(name, 0) + s.size_diff
    total = sum(by_component.values())
    print(
        f"{ready.decode().strip()}; Python heap per idle socket (tracemalloc): {total / count:,.0f} B; "
        f"process PSS delta {1024 * (pss_after - pss_before) / count:,.0f} B/socket (tracemalloc's own "
        "bookkeeping included)"
    )
    for name, size in sorted(by_component.items(), key=lambda kv: -kv[1]):
        print(f"  {size / count:8,.0f} B  {name}")
    print(f"top {lines} allocation sites (B per socket, objects per socket):")
    for s in after.compare_to(before, "lineno")[:lines]:
        frame = s.traceback[0]
        where = frame.filename.split("site-packages/")[-1].split("/imhub/", 1)[-1]
        print(f"  {s.size_diff / count:8,.0f} B {s.count_diff / count:5.1f}  {where}:{frame.lineno}")
    tracemalloc.stop()
    client.stdin.close()  # type: ignore[union-attr]
    client.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imhub-sockmem-") as tmp:
        data_dir = Path(tmp)
        os.environ.update(
            IMHUB_DATA_DIR=str(data_dir),
            IMHUB_MAX_CONNECTIONS_PER_IP="0",
            IMHUB_LOG_LEVEL="warning",
        )
        users_file = data_dir / "users.jsonl"
        subprocess.run(
            [sys.executable, "-m", "imhub", "user", "seed", "--count", str(args.count + 20), "--out", str(users_file)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        uvloop.run(measure(args.count, data_dir, users_file, args.lines))


if __name__ == "__main__":
    main()
