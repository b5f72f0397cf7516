"""Where a single group message's fan-out spends its time per recipient, on real
loopback sockets (issue #21 item 6). Not a pytest file: run it under the bench lock,

    flock /work/bench.lock .venv/bin/python tests/microbench/fanout_stages.py 5000

It opens N TCP connections to a uvloop server (a forked process holds the client ends
and reads them with epoll, as the bench's clients do), then, six rounds each, measures
the event-loop thread's CPU time per recipient of:

- ``os.write``: one raw write() per socket (the kernel's share);
- ``transport.write``: the same through uvloop's transports;
- ``hub.deliver``: the hub's push loop (queueing the frame on every Connection);
- ``flush``: the flusher writing every connection (bookkeeping + transport.write);
- ``hub``: the two together, i.e. what one group message costs per recipient.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import sys
import time
from typing import cast

import uvloop

from imhub.bus.base import Delivery
from imhub.domain.model import Cmd, Message
from imhub.gateway.connection import Connection, flush_now
from imhub.gateway.hub import Hub
from imhub.protocol.frames import encode_message
from imhub.protocol.wsframe import text_frame

GROUP = 7
ROUNDS = 6


def _reader(n: int, port: int, ready: int) -> None:
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    by_fd = {}
    poller = select.epoll()
    for c in clients:
        c.setblocking(False)
        poller.register(c.fileno(), select.EPOLLIN)
        by_fd[c.fileno()] = c
    os.write(ready, b"x")
    while True:
        for fd, _ in poller.poll(5):
            if not by_fd[fd].recv(65536):
                os._exit(0)


class _Accept(asyncio.Protocol):
    def __init__(self, transports: list[asyncio.Transport]) -> None:
        self.transports = transports

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transports.append(cast(asyncio.Transport, transport))  # uvloop's is not a subclass


async def main(n: int) -> None:
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    server = await loop.create_server(lambda: _Accept(transports), "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _reader(n, port, ready_w)
    while len(transports) < n:
        await asyncio.sleep(0.01)
    os.read(ready_r, 1)
    hub = Hub("n")
    for i, t in enumerate(transports):
        hub.add(Connection(i + 2, t, lambda code, why: None, 1 << 20, loop), [GROUP])
    m = Message(
        id=1,
        conv=f"g{GROUP}",
        seq=1,
        ts=1_764_000_000_000,
        userid=1,
        cmd=Cmd.GROUP,
        dstid=GROUP,
        media=1,
        content="meeting at 10, room 4",
        cid="c1",
    )
    frame = text_frame(encode_message(m))
    fds = [t.get_extra_info("socket").fileno() for t in transports]
    us: dict[str, list[float]] = {}

    def note(stage: str, ns: int) -> None:
        us.setdefault(stage, []).append(ns / n / 1000)

    for seq in range(1, ROUNDS + 1):
        await asyncio.sleep(0.2)  # let the reader drain
        t0 = time.thread_time_ns()
        for fd in fds:
            os.write(fd, frame)
        note("os.write", time.thread_time_ns() - t0)
        await asyncio.sleep(0.2)
        t0 = time.thread_time_ns()
        for t in transports:
            t.write(frame)
        note("transport.write", time.thread_time_ns() - t0)
        await asyncio.sleep(0.2)
        t0 = time.thread_time_ns()
        hub.deliver(Delivery(frame, group=GROUP, conv=f"g{GROUP}", seq=seq, origin=0, node="n"))
        t1 = time.thread_time_ns()
        flush_now(loop)
        t2 = time.thread_time_ns()
        note("hub.deliver", t1 - t0)
        note("flush", t2 - t1)
        note("hub", t2 - t0)
    for stage, values in us.items():
        values.sort()
        print(f"{stage:16s} min {values[0]:6.2f}  median {values[len(values) // 2]:6.2f} us per recipient")
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    for t in transports:
        t.close()
    server.close()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
