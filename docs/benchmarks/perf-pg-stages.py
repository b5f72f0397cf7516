"""(docs/benchmarks/perf-pg.md) PostgreSQL append cost by stage, on a fresh database, with no server around it.

python stages.py <code dir> <batch> <batches> [variants...]
Prints, per variant: backend CPU us/msg (from /proc of the PG backend), Python CPU us/msg, wall us/msg.
"""
import asyncio, os, random, re, sys, time
sys.path.insert(0, sys.argv[1])
import asyncpg
from imhub.domain.model import Draft
from imhub.store.db import Database
from imhub.store.messages import MessageStore
from imhub.store.migrate import migrate

TICK = os.sysconf("SC_CLK_TCK")

def cpu_of(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK

def drop_cte(sql, name):
    # remove ", name AS ( ... )" up to the next "), " at top level: the CTEs are on their own lines
    return re.sub(r"\), %s AS \(.*?\n(?=\), |\)\nSELECT)" % name, "", sql, flags=re.S)

async def main():
    code, batch, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    variants = sys.argv[4:] or ["store"]
    name = f"imhub_stage_{os.getpid()}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        await migrate(url)
        c = await asyncpg.connect(host="127.0.0.1", user="postgres", database=name)
        await c.execute("INSERT INTO users (mobile, passwd, createat) SELECT 'm'||g, 'x', 0 FROM generate_series(1,1000) g")
        ids = [r[0] for r in await c.fetch("SELECT id FROM users ORDER BY id")]
        pairs = [(ids[2 * i], ids[2 * i + 1]) for i in range(500)]
        n = [0]

        def drafts():
            out = []
            for _ in range(batch):
                a, b = random.choice(pairs)
                if random.random() < 0.5:
                    a, b = b, a
                n[0] += 1
                out.append(Draft(userid=a, cmd=10, dstid=b, media=1, content=f"message number {n[0]} hello there",
                                 cid=f"c{n[0]}"))
            return out

        db = Database(url)
        store = MessageStore(db)
        # warm up: every conversation and cursor exists, as in a chat run after its first seconds
        for _ in range(max(1, 2000 // batch)):
            await store.append_batch(drafts())
        results = {}
        for variant in [v for _ in range(int(os.environ.get('ROUNDS', '1'))) for v in variants]:
            if variant == "store":
                pids = await c.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
                run = lambda d: store.append_batch(d)
            else:
                from imhub.store.append_ops import PgAppendOps
                import imhub.store.append_ops as ao
                sql = PgAppendOps._APPEND
                for cte in variant.split("-")[1:]:
                    sql = drop_cte(sql, cte)
                ops_cls = type("V", (PgAppendOps,), {"_APPEND": sql})
                if variant.startswith("nodedup"):
                    ops_cls.existing = lambda self, keys: {}
                store._append_pg = lambda pg, d, cls=ops_cls: store._append_batch(cls(pg), d)
                pids = await c.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
                run = lambda d: store.append_batch(d)
            pids = [r[0] for r in pids]
            work = [drafts() for _ in range(batches)]
            b0 = sum(cpu_of(p) for p in pids); p0 = time.process_time(); w0 = time.perf_counter()
            for d in work:
                await run(d)
            w = time.perf_counter() - w0; p = time.process_time() - p0; b = sum(cpu_of(p) for p in pids) - b0
            m = batch * batches
            results.setdefault(variant, []).append((b*1e6/m, p*1e6/m, w*1e6/m))
        for variant, rs in results.items():
            best = lambda i: min(r[i] for r in rs)
            print(f"{variant:22s} batch {batch:4d}, best of {len(rs)}: PG backend CPU {best(0):6.1f} us/msg, Python CPU {best(1):6.1f} us/msg, wall {best(2):7.1f} us/msg")
        await db.dispose()
        await c.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")

import uvloop
uvloop.install()
asyncio.run(main())
