"""SlidingWindowLimiter with a fake clock."""

from __future__ import annotations

import pytest

from imhub.ratelimit import SlidingWindowLimiter


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
