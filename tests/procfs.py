"""What /proc says about server processes: a supervisor's workers, and which worker
holds which accepted TCP connection (Linux only; tests using it skip elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

from imhub.bench.procstat import children

__all__ = ["accepted_count", "children", "owner_of", "socket_inodes"]

ESTABLISHED = "01"


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _accepted(server_port: int) -> dict[str, int]:
    """inode -> client port of every established IPv4 connection accepted on server_port."""
    want_local = f":{server_port:04X}"
    out = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[1].endswith(want_local) and cols[3] == ESTABLISHED:
            out[cols[9]] = int(cols[2].rsplit(":", 1)[1], 16)
    return out


def owner_of(client_port: int, server_port: int, pids: set[int]) -> int | None:
    """The pid whose accepted socket is (server_port <- client_port)."""
    inode = next((i for i, port in _accepted(server_port).items() if port == client_port), None)
    if inode is None:
        return None
    return next((pid for pid in pids if inode in socket_inodes(pid)), None)


def accepted_count(pid: int, server_port: int) -> int:
    """How many connections accepted on server_port the process ``pid`` holds."""
    return len(socket_inodes(pid) & _accepted(server_port).keys())
