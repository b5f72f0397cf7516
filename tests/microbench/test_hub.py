"""Hub fan-out: one group message to the 1,000 members online in this process, through
the real Connection objects (coalesced writes) to fake transports. One round is
``deliver`` plus the loop turn that flushes the sockets (so it includes one
``run_until_complete``, a few µs)."""

from __future__ import annotations

import asyncio

import pytest

from imhub.bus.base import Delivery
from imhub.domain.model import Cmd, Message
from imhub.gateway.connection import Connection
from imhub.gateway.hub import Hub
from imhub.protocol.frames import encode_message
from imhub.protocol.wsframe import text_frame
from tests.microbench.conftest import LoopRunner

MEMBERS = 1000
GROUP = 7
NODE = "node-a"


class FakeTransport:
    """Counts what a socket would have written."""

    __slots__ = ("closing", "data", "writes")

    def __init__(self) -> None:
        self.writes = 0
        self.data = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.data += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


def _frame(seq: int, conv: str, cmd: int, dst: int) -> bytes:
    m = Message(id=seq, conv=conv, seq=seq, ts=1_764_000_000_000, userid=1, cmd=cmd, dstid=dst, media=1,
                content="meeting at 10, room 4", cid=f"c{seq}")
    return text_frame(encode_message(m))


@pytest.fixture
def hub(run: LoopRunner) -> tuple[Hub, dict[int, FakeTransport], dict[int, Connection]]:
    hub = Hub(NODE)
    transports: dict[int, FakeTransport] = {}
    conns: dict[int, Connection] = {}
    closed: list[tuple[int, str]] = []
    for uid in range(1, MEMBERS + 1):
        t = transports[uid] = FakeTransport()
        conns[uid] = Connection(uid, t, lambda code, why: closed.append((code, why)), 1 << 20, run.loop)
        hub.add(conns[uid], [GROUP])
    return hub, transports, conns


def test_group_fanout_to_1000_connections(benchmark, run: LoopRunner, hub) -> None:
    h, transports, conns = hub
    sender = conns[1]
    frame = _frame(1, f"g{GROUP}", Cmd.GROUP, GROUP)
    rounds = 0

    async def one(seq: int) -> None:
        h.deliver(Delivery(frame, group=GROUP, conv=f"g{GROUP}", seq=seq, origin=sender.id,
                           node=NODE))
        await asyncio.sleep(0)  # the flush scheduled by the pushes runs before this resumes

    def fan_out() -> None:
        nonlocal rounds
        rounds += 1
        run(one(rounds))

    benchmark(fan_out)
    # Every member but the sending connection got the frame once per round, in one
    # write per round; the sender got nothing (it gets an ack instead).
    assert transports[1].writes == 0
    others = [transports[u] for u in range(2, MEMBERS + 1)]
    assert all(t.writes == rounds and t.data == rounds * len(frame) for t in others)
    assert h.group_seq[GROUP] == rounds
    assert not any(c.pending for c in conns.values())


def test_group_burst_of_20_is_coalesced(benchmark, run: LoopRunner, hub) -> None:
    """20 messages to the group in one loop turn: one write per member, not 20."""
    h, transports, _ = hub
    frames = [_frame(i, f"g{GROUP}", Cmd.GROUP, GROUP) for i in range(1, 21)]
    rounds = 0

    async def burst(base: int) -> None:
        for i, frame in enumerate(frames):
            h.deliver(Delivery(frame, group=GROUP, conv=f"g{GROUP}", seq=base + i + 1, node="other"))
        await asyncio.sleep(0)

    def go() -> None:
        nonlocal rounds
        run(burst(rounds * 20))
        rounds += 1

    benchmark(go)
    size = sum(len(f) for f in frames)
    assert all(t.writes == rounds and t.data == rounds * size for t in transports.values())


def test_private_delivery_to_three_tabs(benchmark, run: LoopRunner, hub) -> None:
    """A 1:1 message to a user with three connections here."""
    h, _, _ = hub
    tabs = [FakeTransport() for _ in range(3)]
    for t in tabs:
        h.add(Connection(5000, t, lambda code, why: None, 1 << 20, run.loop), [])
    frame = _frame(1, "p1_5000", Cmd.PRIVATE, 5000)
    rounds = 0

    async def one(seq: int) -> None:
        h.deliver(Delivery(frame, (5000,), conv="p1_5000", seq=seq, node="other", sender=1))
        await asyncio.sleep(0)

    def go() -> None:
        nonlocal rounds
        rounds += 1
        run(one(rounds))

    benchmark(go)
    assert all(t.writes == rounds and t.data == rounds * len(frame) for t in tabs)
    assert (5000, "p1_5000", rounds) in h.take_delivered()


def test_loop_turn_baseline(benchmark, run: LoopRunner) -> None:
    """What one round above costs without any delivery (subtract it from theirs)."""
    turns = 0

    async def nothing() -> int:
        await asyncio.sleep(0)
        return 1

    def go() -> None:
        nonlocal turns
        turns += run(nothing())

    benchmark(go)
    assert turns >= 1
