"""Wall-clock time in integer milliseconds: the one unit the schema and protocol use."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
