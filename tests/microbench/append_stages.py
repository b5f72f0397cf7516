"""CPU per message of each stage of the SQLite append (the writer thread's work for a
chat message), on a real database file: batches of N 1:1 messages over N
conversations (the chat bench's shape: every message from another pair), each in its
own BEGIN IMMEDIATE ... COMMIT, as :meth:`Database.write_raw` runs them, here on one
thread with nobody else wanting the GIL (so this is the floor, without hand-overs).

    .venv/bin/python tests/microbench/append_stages.py [BATCH] [BATCHES]

Prints thread CPU time per message for each stage (dedup read, seq bump, insert,
search index, read cursors, commit) and in all.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imhub.domain.model import Cmd, Draft
from imhub.store import append_ops
from imhub.store.checkpoint import no_auto_checkpoint
from imhub.store.db import Database
from imhub.store.engine import _sqlite_on_connect
from imhub.store.messages import MessageStore
from imhub.store.migrate import migrate
from imhub.store.users import UserStore

spent: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.thread_time() - t

    return wrapper


def main(batch: int, batches: int) -> None:
    ops = append_ops.SqliteAppendOps
    for name in ("existing", "bump_seqs", "insert", "index", "mark_read"):
        setattr(ops, name, timed(name, getattr(ops, name)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "imhub.db"
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(migrate(url))

        async def users() -> list[int]:
            db = Database(url)
            store = UserStore(db)
            ids = [(await store.create(mobile=f"138{i:08d}", passwd_hash="x")).id for i in range(2 * batch)]
            await db.dispose()
            return ids

        ids = asyncio.run(users())
        pairs = list(zip(ids[:batch], ids[batch:], strict=True))
        store = MessageStore.__new__(MessageStore)  # only its append logic, on our cursor
        raw = sqlite3.connect(path, isolation_level=None)
        _sqlite_on_connect(raw, None)  # the server's pragmas; its checkpointer thread
        no_auto_checkpoint(raw)  # checkpoints, not the commits
        cids = itertools.count()
        total = 0.0
        for b in range(batches + 5):
            drafts = [
                Draft(userid=a, cmd=Cmd.PRIVATE, dstid=d, media=1, content=f"b {time.time_ns()}",
                      cid=f"c{next(cids)}")
                for a, d in pairs
            ]
            if b == 5:  # warm-up done
                spent.clear()
                total = 0.0
            t = time.thread_time()
            cur = raw.cursor()
            cur.execute("BEGIN IMMEDIATE")
            store._append_batch(append_ops.SqliteAppendOps(cur), drafts)
            c = time.thread_time()
            raw.commit()
            spent["commit"] += time.thread_time() - c
            total += time.thread_time() - t
        n = batch * batches
        for name, s in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"{name:10s} {s / n * 1e6:7.2f} us/message")
        print(f"{'all':10s} {total / n * 1e6:7.2f} us/message (batch {batch}, {batches} batches)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, int(sys.argv[2]) if len(sys.argv) > 2 else 500)
