"""Run a real ``imhub serve`` process for tests that need one (crash and restart,
several processes, browsers): the bench's own :class:`SpawnedServer`, with the
tests' calling convention (settings as keyword arguments)."""

from __future__ import annotations

from pathlib import Path

from imhub.bench.runner import SpawnedServer, free_port

__all__ = ["ServerProcess", "free_port"]


class ServerProcess(SpawnedServer):
    """``ServerProcess(data_dir, port=None, IMHUB_X="…", …).start()``; ``kill()`` is a
    crash (SIGKILL), ``stop()`` a graceful stop (SIGTERM)."""

    def __init__(self, data_dir: Path, port: int | None = None, **env: str) -> None:
        workers = int(env.pop("IMHUB_WORKERS", "1"))
        log_level = env.pop("IMHUB_LOG_LEVEL", "info")
        super().__init__(data_dir, workers, log_level, env, port=port)
