"""(docs/benchmarks/perf-pg.md) Time inside PostgreSQL of the append statement by
stage: EXPLAIN (ANALYZE, FORMAT JSON) of N batches after a warm-up, median per stage.

    python perf-pg-explain.py <code dir> <batch> <N>      (SHOW=1: print the last plan)
"""

import asyncio
import json
import os
import random
import statistics
import sys

sys.path.insert(0, sys.argv[1])

from perf_pg_db import scratch_database

from imhub.domain.ngrams import index_terms
from imhub.store.append_ops import PgAppendOps


def walk(node, out):
    kids = node.get("Plans", [])
    if node["Node Type"] == "ModifyTable":
        child = sum(k["Actual Total Time"] * k["Actual Loops"] for k in kids)
        out[node["Relation Name"]] = out.get(node["Relation Name"], 0) + node["Actual Total Time"] - child
    for k in kids:
        walk(k, out)


async def main():
    batch, n = int(sys.argv[2]), int(sys.argv[3])
    async with scratch_database("imhub_es", os.getpid()) as scratch:
        c, pairs = scratch.conn, scratch.pairs
        if os.environ.get("GENERIC"):
            await c.execute("SET plan_cache_mode = force_generic_plan")
        k = 0
        stages = {}
        for rep in range(n + 2000 // batch):
            rows = []
            for _ in range(batch):
                a, b = random.choice(pairs)
                if random.random() < 0.5:
                    a, b = b, a
                k += 1
                rows.append((f"p{min(a, b)}_{max(a, b)}", a, b, f"message number {k} hello there", f"c{k}"))
            convs = [r[0] for r in rows]
            left = {}
            for cv in convs:
                left[cv] = left.get(cv, 0) + 1
            per = sorted(left.items())
            backs = []
            for cv in convs:
                left[cv] -= 1
                backs.append(left[cv])
            args = [
                convs,
                backs,
                [r[1] for r in rows],
                [10] * batch,
                [r[2] for r in rows],
                [1] * batch,
                [r[3] for r in rows],
                [""] * batch,
                [""] * batch,
                [""] * batch,
                [0] * batch,
                [r[4] for r in rows],
                [0] * batch,
                [False] * batch,
                [index_terms(r[3]) for r in rows],
                [p[0] for p in per],
                [p[1] for p in per],
                1,
            ] + ([True] if "$19" in PgAppendOps._APPEND else [])
            if rep < 2000 // batch:
                await c.fetch(PgAppendOps._APPEND, *args)
                continue
            dd = await c.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + PgAppendOps._EXISTING, [r[1] for r in rows], [r[4] for r in rows]
            )
            (plan,) = json.loads(await c.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + PgAppendOps._APPEND, *args))
            st = {}
            walk(plan["Plan"], st)
            for t in plan.get("Triggers", []):
                st["FK check " + t["Relation"]] = st.get("FK check " + t["Relation"], 0) + t["Time"]
            st["planning"] = plan["Planning Time"]
            st["rest (unnest, joins, sorts)"] = plan["Execution Time"] - sum(
                v for key, v in st.items() if key != "planning"
            )
            st["dedup SELECT (own statement)"] = (
                json.loads(dd)[0]["Execution Time"] + json.loads(dd)[0]["Planning Time"]
            )
            if rep == n + 2000 // batch - 1 and os.environ.get("SHOW"):
                args[11] = [x + "x" for x in args[11]]
                print("\n".join(r[0] for r in await c.fetch("EXPLAIN ANALYZE " + PgAppendOps._APPEND, *args)))
            for key, v in st.items():
                stages.setdefault(key, []).append(v)
        tot = 0
        for key, vs in stages.items():
            med = statistics.median(vs) * 1000 / batch
            tot += med
            print(f"  {key:32s} {med:6.1f} us/msg")
        print(f"  {'total (medians)':32s} {tot:6.1f} us/msg")


asyncio.run(main())
