"""CPU per bus message through real Redis: bus A publishes 1:1 Deliveries to user
channels that bus B watches (B on the same process). Reports process CPU per message
split: publish side (A's publish + outbox) and receive side (B's reader)."""
import asyncio, os, sys, time, resource
import uvloop
from imhub.bus.redis import RedisBus
from imhub.bus.base import Delivery

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
URL = sys.argv[2] if len(sys.argv) > 2 else "redis://127.0.0.1:6379/0"
FRAME = b"\x81\x7e\x01\x90" + b"x" * 400

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime

async def _drain(a):
    while any(sh._outbox for sh in a.shards) or not all(sh._outbox_sent.is_set() for sh in a.shards):
        await asyncio.sleep(0.001)

async def main():
    prefix = "capmicro-" + os.urandom(3).hex()
    got = 0; done = asyncio.Event()
    def on_b(d):
        nonlocal got
        got += 1
        if got >= N: done.set()
    a = RedisBus(URL, prefix=prefix); b = RedisBus(URL, prefix=prefix)
    await a.start(lambda d: None, lambda c: None); await b.start(on_b, lambda c: None)
    users = list(range(1, 1001))
    for u in users: (b.watch_user(u) if not os.environ.get("PUBONLY") else None)
    await asyncio.sleep(1.0)
    t0 = time.perf_counter(); c0 = cpu()
    per_tick = 200
    sent = 0
    while sent < N:
        for i in range(per_tick):
            u = users[(sent + i) % 1000]
            await a.publish(Delivery(FRAME, (u,), 0, f"2:{u}:{u+1}", sent + i, 0, "n", u + 1, 1))
        sent += per_tick
        await asyncio.sleep(0)
    await (asyncio.wait_for(done.wait(), 60) if not os.environ.get("PUBONLY") else _drain(a))
    c1 = cpu(); t1 = time.perf_counter()
    print(f"{N} messages: {1e6*(c1-c0)/N:.1f} us CPU per message (publish+receive), wall {t1-t0:.2f}s")
    await a.close(); await b.close()

uvloop.run(main())
