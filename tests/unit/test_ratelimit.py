"""SlidingWindowLimiter and DistinctLimiter with a fake clock."""

from __future__ import annotations

import pytest

from imhub.ratelimit import DistinctLimiter, SlidingWindowLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_allows_limit_then_refuses_until_window_slides() -> None:
    clock = Clock()
    lim = SlidingWindowLimiter(3, 10, clock=clock)
    assert lim.allow("k")
    clock.t += 1
    assert [lim.allow("k") for _ in range(3)] == [True, True, False]
    assert lim.retry_after("k") == pytest.approx(9)
    clock.t += 9
    # Only the oldest event left the window: exactly one slot frees.
    assert lim.allow("k") and not lim.allow("k")


def test_keys_are_independent_and_reset() -> None:
    lim = SlidingWindowLimiter(1, 60, clock=Clock())
    assert lim.allow("a") and lim.allow("b")
    assert not lim.allow("a")
    lim.reset("a")
    assert lim.allow("a")


def test_hit_counts_without_checking() -> None:
    lim = SlidingWindowLimiter(2, 60, clock=Clock())
    lim.hit("x")
    assert lim.retry_after("x") == 0
    lim.hit("x")
    assert lim.retry_after("x") > 0


def test_memory_is_bounded() -> None:
    clock = Clock()
    lim = SlidingWindowLimiter(5, 60, max_keys=100, clock=clock)
    for i in range(1000):
        lim.hit(i)
    assert len(lim) == 100
    # Expired keys are dropped when looked at.
    clock.t += 61
    assert lim.retry_after(999) == 0 and len(lim) == 99


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(0, 1)


def test_distinct_counts_members_not_events() -> None:
    clock = Clock()
    lim = DistinctLimiter(2, 10, clock=clock)
    for _ in range(5):
        assert lim.retry_after("ip", "a") == 0
        lim.hit("ip", "a")  # one member, however often
    lim.hit("ip", "b")
    assert lim.retry_after("ip", "a") == 0 and lim.retry_after("ip", "b") == 0  # already counted
    assert lim.retry_after("ip", "c") == pytest.approx(10)
    clock.t += 4
    lim.hit("ip", "a")  # seen again: "b" is now the oldest
    clock.t += 6.5
    assert lim.retry_after("ip", "c") == 0  # "b" left the window
    lim.forget("ip", "a")
    assert len(lim) == 0


def test_distinct_memory_is_bounded() -> None:
    lim = DistinctLimiter(3, 10, max_keys=50)
    for i in range(500):
        lim.hit(i, "m")
    assert len(lim) == 50
