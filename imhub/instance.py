"""One server per data directory with the in-process bus (issue #22, item 6).

Two ``imhub serve`` on one port both come up (SO_REUSEPORT) and the kernel splits the
clients between them; with the in-process bus neither hears the other's messages, so
users on different processes silently stop reaching each other. A server therefore
holds a lock file in its data directory (``imhub.lock``, ``flock``) for as long as it
runs; the kernel drops it when the process exits, however it exits:

- ``IMHUB_BUS=local``: an *exclusive* lock — no other server may use the directory.
- ``IMHUB_BUS=redis``: a *shared* lock — any number of redis-bus servers may share the
  directory (they reach each other through Redis; ``--workers N`` does the same inside
  one supervisor), whatever the database: several processes on one SQLite file is what
  ``--workers N`` on SQLite does already (WAL, ``BEGIN IMMEDIATE``, ``busy_timeout``),
  only slower than PostgreSQL. What they must not share it with is a local-bus server.

With ``--workers N`` the supervisor takes the lock before it forks; the workers inherit
the open file (and so the lock) and never take it themselves. With the local bus the
listening socket is also bound without SO_REUSEPORT (one process needs none), so a
second server on the same port fails to bind even with another data directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from imhub.config import Settings

LOCK_NAME = "imhub.lock"

HOW_TO_SCALE = (
    "To run several worker processes on one port, run one `imhub serve --workers N` with IMHUB_BUS=redis "
    "(and IMHUB_REDIS_URL); see docs/deployment.md."
)


class InstanceError(Exception):
    """Another live server holds what this one needs (data directory or port)."""


@contextlib.contextmanager
def hold(settings: Settings) -> Iterator[Path]:
    """Hold the data directory's lock (exclusive for the local bus, shared for Redis)
    until the block ends; raise :class:`InstanceError` if another server holds it."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        shared = settings.bus == "redis"
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstanceError(_refusal(fd, path, shared)) from None
        yield path
    finally:
        os.close(fd)  # releases the lock (children forked meanwhile keep it until they exit)


def _refusal(fd: int, path: Path, shared: bool) -> str:
    data_dir = path.parent
    if shared:
        return (
            f"a server with the in-process bus (IMHUB_BUS=local) is running on the data directory {data_dir} "
            f"(it holds {path}); it could not hear this one's messages. Stop it first, or run both with "
            f"IMHUB_BUS=redis. {HOW_TO_SCALE}"
        )
    others = "another imhub server is"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        others = "imhub servers with the Redis bus are"  # they only hold it shared
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        pass
    return (
        f"{others} already running on the data directory {data_dir} (it holds {path}). With the in-process "
        f"bus (IMHUB_BUS=local) only one server process may use a data directory: users connected to "
        f"different processes could not reach each other. {HOW_TO_SCALE}"
    )


def port_in_use(settings: Settings) -> InstanceError:
    return InstanceError(
        f"port {settings.port} on {settings.host} is in use by another process (another imhub server?). With the "
        f"in-process bus (IMHUB_BUS=local) a server does not share its port. {HOW_TO_SCALE}"
    )
