"""(docs/benchmarks/perf-pg.md) The message append alone on PostgreSQL: CPU of the
database backend, CPU of this process and wall time per message.

    ROUNDS=2 python perf-pg-stages.py <code dir> <batch> <batches>

``<code dir>``: the checkout whose ``imhub`` to measure. Makes a fresh database with
1,000 users, warms up with 2,000 messages of 500 pairs (every conversation and cursor
row exists, as in a chat run after its first seconds), then times ``<batches>``
batches per round and prints the best round. Drops the database.
"""

import asyncio
import os
import random
import sys
import time

sys.path.insert(0, sys.argv[1])

import uvloop
from perf_pg_db import scratch_database

from imhub.domain.model import Draft
from imhub.store.db import Database
from imhub.store.messages import MessageStore

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def main() -> None:
    batch, batches = int(sys.argv[2]), int(sys.argv[3])
    async with scratch_database("imhub_stage", os.getpid()) as scratch:
        name, url, c, pairs = scratch.name, scratch.url, scratch.conn, scratch.pairs
        n = 0

        def drafts() -> list[Draft]:
            nonlocal n
            out = []
            for _ in range(batch):
                a, b = random.choice(pairs)
                if random.random() < 0.5:
                    a, b = b, a
                n += 1
                out.append(Draft(userid=a, cmd=10, dstid=b, media=1, content=f"message {n} hello there", cid=f"c{n}"))
            return out

        db = Database(url)
        store = MessageStore(db)
        for _ in range(max(1, 2000 // batch)):
            await store.append_batch(drafts())
        rounds = []
        for _ in range(int(os.environ.get("ROUNDS", "1"))):
            sql = "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
            pids = [r[0] for r in await c.fetch(sql, name)]
            work = [drafts() for _ in range(batches)]
            b0, p0, w0 = sum(cpu_of(p) for p in pids), time.process_time(), time.perf_counter()
            for d in work:
                await store.append_batch(d)
            w, p, b = time.perf_counter() - w0, time.process_time() - p0, sum(cpu_of(p) for p in pids) - b0
            m = batch * batches
            rounds.append((b * 1e6 / m, p * 1e6 / m, w * 1e6 / m))
        backend, python, wall = (min(r[i] for r in rounds) for i in range(3))
        print(
            f"batch {batch:4d}, best of {len(rounds)}: PostgreSQL backend CPU {backend:6.1f} us/msg, "
            f"Python CPU {python:6.1f} us/msg, wall {wall:7.1f} us/msg"
        )
        await db.dispose()


uvloop.install()
asyncio.run(main())
