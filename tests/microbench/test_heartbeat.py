"""A heartbeat through the gateway's socket layer, syscalls left out: one masked
``{"cmd":0}`` read handed to ``ChatSocket.data_received`` (recognised, answered by the
session, queued on the connection) and the flush that writes the reply (to a transport
that only counts). What remains per heartbeat on top of this is the kernel's recv and
send (docs/benchmarks/perf-ws.md)."""

from __future__ import annotations

import os

from imhub.gateway.connection import Connection, flush_now
from imhub.protocol.session import Limits, Session
from imhub.web.chat import ChatSocket, ChatState
from tests.microbench.conftest import LoopRunner


class CountingTransport:
    def __init__(self) -> None:
        self.writes = 0
        self.last = b""

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.last = data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


def masked(payload: bytes) -> bytes:
    key = os.urandom(4)
    return bytes((0x81, 0x80 | len(payload))) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def test_heartbeat_read_answered_and_flushed(benchmark, run: LoopRunner) -> None:
    loop = run.loop
    state = ChatState({}, {})
    state.loop = loop
    transport = CountingTransport()
    sock = ChatSocket(state, transport, "127.0.0.1", 1 << 18)  # type: ignore[arg-type]
    sock.conn = Connection(7, transport, sock.close_cb, 1 << 20, loop)
    sock.session = Session(7, Limits(), loop.time())
    frame = masked(b'{"cmd":0}')

    def one() -> None:
        sock.data_received(frame)
        flush_now(loop)

    benchmark(one)
    assert transport.writes >= 1 and transport.last.startswith(b'\x81\x1c{"cmd":0,"ts":')
    assert not sock.conn.pending
