"""The sequencer puts each conversation's messages back in seq order before fan-out
(imhub/gateway/sequencer.py)."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from imhub.bus.base import Delivery
from imhub.gateway import sequencer as seqmod
from imhub.gateway.sequencer import Sequencer


def msg(conv: str, seq: int) -> Delivery:
    return Delivery(b"", (1,), conv=conv, seq=seq)


def run(envs: list[Delivery]) -> tuple[Sequencer, list[tuple[str, int]]]:
    out: list[tuple[str, int]] = []
    s = Sequencer(lambda e: out.append((e.conv, e.seq)))
    for e in envs:
        s.submit(e)
    return s, out


async def test_in_order_and_events_pass_at_once() -> None:
    event = Delivery(b"typing", (1,))
    _, out = run([msg("g1", 5), msg("g1", 6), event, msg("p1_2", 9), msg("g1", 7)])
    assert out == [("g1", 5), ("g1", 6), ("", 0), ("p1_2", 9), ("g1", 7)]


async def test_out_of_order_is_held_until_the_gap_fills(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.1)
    s, out = run([msg("g1", 5), msg("g1", 7), msg("g1", 8), msg("p1_2", 3)])
    assert out == [("g1", 5), ("p1_2", 3)]  # 7 and 8 wait for 6; other conversations do not
    s.submit(msg("g1", 6))
    assert out[2:] == [("g1", 6), ("g1", 7), ("g1", 8)]
    await asyncio.sleep(0.15)  # the wait's timer finds nothing
    assert len(out) == 5 and s.released_on_timeout == 0


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_a_gap_that_never_fills_is_released_after_the_wait(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.1)
    held, released = counted("imhub_messages_held_total"), counted("imhub_messages_gap_released_total")
    s, out = run([msg("g1", 5), msg("g1", 8), msg("g1", 7)])
    assert out == [("g1", 5)]
    await asyncio.sleep(0.15)
    assert out == [("g1", 5), ("g1", 7), ("g1", 8)] and s.released_on_timeout == 2
    assert counted("imhub_messages_held_total") == held + 2
    assert counted("imhub_messages_gap_released_total") == released + 2
    s.submit(msg("g1", 6))  # late: still delivered (the client syncs around it)
    s.submit(msg("g1", 9))
    assert out[3:] == [("g1", 6), ("g1", 9)]


async def test_forgotten_conversation_starts_afresh() -> None:
    s, out = run([msg("g1", 5)])
    s.forget("g1")
    s.submit(msg("g1", 40))  # this process stopped receiving g1 meanwhile
    assert out == [("g1", 5), ("g1", 40)]


async def test_an_old_wait_does_not_release_a_newer_one_early(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.1)
    s, out = run([msg("g1", 1), msg("g1", 3)])
    s.submit(msg("g1", 2))  # first wait resolved in order
    await asyncio.sleep(0.06)
    s.submit(msg("g1", 5))  # a new gap: its own 0.1 s wait
    await asyncio.sleep(0.06)  # the first timer fires now
    assert out == [("g1", 1), ("g1", 2), ("g1", 3)]
    await asyncio.sleep(0.08)
    assert out[-1] == ("g1", 5) and s.released_on_timeout == 1


async def test_a_failing_delivery_after_the_wait_does_not_stop_the_rest(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.05)
    out: list[int] = []

    def deliver(e: Delivery) -> None:
        if e.seq == 3:
            raise RuntimeError("socket gone")
        out.append(e.seq)

    s = Sequencer(deliver)
    for seq in (1, 3, 4):
        s.submit(msg("g1", seq))
    await asyncio.sleep(0.1)
    assert out == [1, 4] and s.released_on_timeout == 2
