"""The sequencer puts each conversation's messages back in seq order before fan-out
(imhub/gateway/sequencer.py)."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from imhub.bus.base import Delivery
from imhub.clock import now_ms
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
    # Margins of 0.2 s either side of each timer: a loaded CI box delays a wakeup by
    # tens of milliseconds, and 0.1 s waits with 0.04 s margins failed there.
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.5)
    s, out = run([msg("g1", 1), msg("g1", 3)])
    s.submit(msg("g1", 2))  # first wait resolved in order
    await asyncio.sleep(0.3)
    s.submit(msg("g1", 5))  # a new gap: its own 0.5 s wait (until ~0.8 s)
    await asyncio.sleep(0.3)  # the first timer (0.5 s) has fired by now
    assert out == [("g1", 1), ("g1", 2), ("g1", 3)]
    await asyncio.sleep(0.4)
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


# --- baselines from the store (issue #22: live order on fresh and idle workers) ---------


def with_store(settled: dict[str, int]) -> tuple[Sequencer, list[tuple[str, int]], list[str]]:
    """A sequencer whose baselines come from ``settled`` (conv -> settled seq)."""
    out: list[tuple[str, int]] = []
    asked: list[str] = []

    async def lookup(wanted: list[tuple[str, int]]) -> dict[str, int]:
        convs = [conv for conv, _ in wanted]
        asked.extend(convs)
        await asyncio.sleep(0.01)  # a store read takes a moment: more may arrive meanwhile
        return {conv: settled[conv] for conv in convs}

    return Sequencer(lambda e: out.append((e.conv, e.seq)), lookup), out, asked


async def test_first_sight_waits_for_messages_in_flight_after_the_stored_baseline() -> None:
    """The reported case: an idle worker got g2 466 first, then 463-465."""
    s, out, asked = with_store({"g2": 462})
    s.submit(msg("g2", 466))
    s.submit(msg("g2", 464))
    assert out == []  # held while the baseline is read
    s.submit(msg("g2", 463))
    s.submit(msg("g2", 465))
    await asyncio.sleep(0.05)
    assert out == [("g2", 463), ("g2", 464), ("g2", 465), ("g2", 466)] and asked == ["g2"]


async def test_first_sight_right_after_the_baseline_goes_out_after_one_lookup() -> None:
    s, out, _ = with_store({"p1_2": 9})
    s.submit(msg("p1_2", 10))
    await asyncio.sleep(0.05)
    s.submit(msg("p1_2", 11))
    assert out == [("p1_2", 10), ("p1_2", 11)] and s.released_on_timeout == 0


async def test_first_sight_gives_up_on_what_never_comes(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "FIRST_SIGHT_SECONDS", 0.05)
    s, out, _ = with_store({"g2": 400})  # 401-465 were sent before this worker subscribed
    s.submit(msg("g2", 466))
    s.submit(msg("g2", 467))
    await asyncio.sleep(0.1)
    assert out == [("g2", 466), ("g2", 467)]
    s.submit(msg("g2", 468))
    assert out[-1] == ("g2", 468)  # in step again


async def test_a_baseline_is_not_forgotten_while_messages_are_held(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.05)
    s, out = run([msg("g1", 5), msg("g1", 7)])
    s.forget("g1")  # the last local member left while 7 waits for 6
    s.submit(msg("g1", 6))
    assert out == [("g1", 5), ("g1", 6), ("g1", 7)]


# --- a baseline read that fails or is slow (perf7-loss: the read pool starved) ----------


def flaky_store(settled: dict[str, int], failures: int, delay: float = 0.01):  # type: ignore[no-untyped-def]
    """A sequencer whose first ``failures`` baseline reads raise (a pool timeout)."""
    out: list[tuple[str, int]] = []
    asked: list[str] = []

    async def lookup(wanted: list[tuple[str, int]]) -> dict[str, int]:
        convs = [conv for conv, _ in wanted]
        asked.extend(convs)
        await asyncio.sleep(delay)
        if len(asked) <= failures:
            raise TimeoutError("QueuePool limit of size 10 overflow 10 reached")
        return {conv: settled[conv] for conv in convs}

    return Sequencer(lambda e: out.append((e.conv, e.seq)), lookup), out, asked


async def test_a_failed_baseline_read_is_retried_not_guessed(monkeypatch) -> None:
    """The read failing used to make the first message the baseline: 463-465, still in
    flight, then went out after 466."""
    monkeypatch.setattr(seqmod, "BASELINE_RETRY_SECONDS", 0.01, raising=False)
    s, out, asked = flaky_store({"g2": 462}, failures=1)
    s.submit(msg("g2", 466))
    await asyncio.sleep(0.015)  # the first read has failed
    s.submit(msg("g2", 464))
    s.submit(msg("g2", 463))
    s.submit(msg("g2", 465))
    await asyncio.sleep(0.1)
    assert out == [("g2", 463), ("g2", 464), ("g2", 465), ("g2", 466)] and asked == ["g2", "g2"]
    s.submit(msg("g2", 467))
    assert out[-1] == ("g2", 467)


async def test_a_baseline_read_slower_than_the_first_sight_wait_is_awaited(monkeypatch) -> None:
    """A read queued behind a busy pool outlasts FIRST_SIGHT_SECONDS: the wait must not
    make the first message the baseline meanwhile."""
    monkeypatch.setattr(seqmod, "FIRST_SIGHT_SECONDS", 0.02)
    s, out, _ = flaky_store({"g2": 462}, failures=0, delay=0.1)
    s.submit(msg("g2", 466))
    await asyncio.sleep(0.05)  # the first-sight wait is over, the read still running
    assert out == []
    s.submit(msg("g2", 463))
    s.submit(msg("g2", 465))
    s.submit(msg("g2", 464))
    await asyncio.sleep(0.1)
    assert out == [("g2", 463), ("g2", 464), ("g2", 465), ("g2", 466)]


async def test_after_a_slow_read_what_never_comes_is_not_waited_for_again(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "FIRST_SIGHT_SECONDS", 0.02)
    s, out, _ = flaky_store({"g2": 400}, failures=0, delay=0.05)
    s.submit(msg("g2", 466))
    s.submit(msg("g2", 467))
    await asyncio.sleep(0.07)  # the read is back, long after the wait: 401-465 never come
    assert out == [("g2", 466), ("g2", 467)]


async def test_baselines_wanted_together_are_read_together() -> None:
    """When the sending starts every conversation is new to every process: one read for
    all of them, not one per conversation (perf7-loss.md: 500 at once starved the pool)."""
    settled = {"p1_2": 9, "p3_4": 0, "g7": 40}
    out: list[tuple[str, int]] = []
    reads: list[list[str]] = []

    cutoffs: dict[str, int] = {}

    async def lookup(wanted: list[tuple[str, int]]) -> dict[str, int]:
        convs = [conv for conv, _ in wanted]
        reads.append(convs)
        cutoffs.update(wanted)
        await asyncio.sleep(0.01)
        return {conv: settled[conv] for conv in convs}

    s = Sequencer(lambda e: out.append((e.conv, e.seq)), lookup)
    s.submit(msg("p1_2", 10))
    s.submit(msg("p3_4", 1))
    await asyncio.sleep(0)  # the read is in flight: the next ones wait for the one after
    seen = now_ms()
    s.submit(msg("g7", 41))
    s.submit(msg("p1_2", 11))
    await asyncio.sleep(0.05)
    assert reads == [["p1_2", "p3_4"], ["g7"]]
    assert sorted(out) == [("g7", 41), ("p1_2", 10), ("p1_2", 11), ("p3_4", 1)]
    # g7's cut-off is from when it was first seen, not from when its read ran (later,
    # after the first read): messages stored after it may still be on their way here.
    assert cutoffs["g7"] <= seen - int(seqmod.FIRST_SIGHT_SECONDS * 1000)


# --- a bus lagging seconds behind (perf7-loss "Open": out of order at load 8-10) ---------


def lagged(conv: str, seq: int, lag_ms: int) -> Delivery:
    """A message stored ``lag_ms`` ago that only arrives now."""
    return Delivery(b"", (1,), conv=conv, seq=seq, ts=now_ms() - lag_ms)


async def test_a_lagging_bus_lengthens_the_gap_wait(monkeypatch) -> None:
    """With the bus 0.3 s behind, 6 can come well after 7: a 0.05 s wait would let 7
    out first."""
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.05)
    s, out = run([lagged("g1", 5, 300), lagged("g1", 7, 300)])
    await asyncio.sleep(0.2)
    assert out == [("g1", 5)]
    s.submit(lagged("g1", 6, 300))
    assert out == [("g1", 5), ("g1", 6), ("g1", 7)] and s.released_on_timeout == 0


async def test_a_wait_already_running_follows_a_lag_that_grows(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.05)
    s, out = run([msg("g1", 5), msg("g1", 7)])  # no lag known: a 0.05 s wait
    s.submit(lagged("p1_2", 1, 300))  # then the bus falls 0.3 s behind
    await asyncio.sleep(0.2)
    assert out == [("g1", 5), ("p1_2", 1)]
    s.submit(msg("g1", 6))
    assert out[2:] == [("g1", 6), ("g1", 7)]


async def test_the_lag_is_forgotten_once_the_bus_catches_up(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.05)
    monkeypatch.setattr(seqmod, "LAG_MEMORY_SECONDS", 0.1)
    s, out = run([lagged("g1", 5, 2000)])
    await asyncio.sleep(0.25)  # two memory spans with no lagging message
    s.submit(msg("g1", 7))
    await asyncio.sleep(0.2)
    assert out == [("g1", 5), ("g1", 7)] and s.released_on_timeout == 1


async def test_a_lagging_bus_moves_the_first_sight_cutoff_back() -> None:
    """Messages stored up to the lag before the first sight may still be on the bus:
    counting them as delivered sends them out of order when they come."""
    cutoffs: dict[str, int] = {}

    async def lookup(wanted: list[tuple[str, int]]) -> dict[str, int]:
        cutoffs.update(wanted)
        return {conv: 0 for conv, _ in wanted}

    s = Sequencer(lambda e: None, lookup)
    seen = now_ms()
    s.submit(lagged("g7", 41, 2000))
    await asyncio.sleep(0.01)
    assert cutoffs["g7"] <= seen - 2 * 2000


async def test_a_message_after_its_gap_was_given_up_is_counted_late(monkeypatch) -> None:
    monkeypatch.setattr(seqmod, "GAP_WAIT_SECONDS", 0.02)
    late = counted("imhub_messages_late_total")
    s, out = run([msg("g1", 5), msg("g1", 7)])
    await asyncio.sleep(0.05)
    s.submit(msg("g1", 6))
    assert out == [("g1", 5), ("g1", 7), ("g1", 6)]
    assert counted("imhub_messages_late_total") == late + 1
