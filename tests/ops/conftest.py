"""A real ``imhub serve`` with JSON logs and an admin token, for the ops tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import ServerProcess

ADMIN_TOKEN = "admin-secret-for-tests-0123456789"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path / "data",
        IMHUB_ADMIN_TOKEN=ADMIN_TOKEN,
        IMHUB_LOG_FORMAT="json",
        IMHUB_LOG_LEVEL="debug",
        IMHUB_DRAIN_SECONDS="5",
    ).start()
    try:
        yield proc
    finally:
        proc.stop()
