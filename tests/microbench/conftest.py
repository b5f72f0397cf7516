"""Microbenchmarks of the hot functions (pytest-benchmark; docs/benchmarks.md).

In ``make test`` they run once each as ordinary tests (``--benchmark-disable`` is in
pytest's addopts) and check their result; ``make microbench`` times them. Async code
runs on a private uvloop loop, as in the server.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import uvloop

T = TypeVar("T")


class LoopRunner:
    """Runs coroutines to completion on one event loop kept across a benchmark."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()

    def __call__(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@pytest.fixture(scope="module")
def run() -> Iterator[LoopRunner]:
    runner = LoopRunner()
    try:
        yield runner
    finally:
        runner.close()

