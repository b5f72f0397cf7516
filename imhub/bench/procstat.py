"""CPU time and memory of processes (and their descendants) from /proc (Linux)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Sample:
    cpu: float  # seconds of user+system time
    user: float
    system: float
    rss: int  # bytes, summed
    pids: int  # processes counted


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One process on its own (no children's time)."""

    pid: int
    ppid: int
    name: str  # the command name from /proc/PID/stat (at most 15 characters)
    cpu: float  # seconds of user+system time
    rss: int  # bytes


def _read_stat(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    raw = _read_stat(pid)
    if raw is None:
        return None
    # The command name (field 2) may contain spaces; everything after its ')' is fixed.
    return raw[raw.rindex(")") + 2 :].split()


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def descendants(roots: Iterable[int]) -> list[int]:
    """``roots`` and every live process below them."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
    out: list[int] = []
    todo = list(roots)
    seen: set[int] = set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def sample(pids: Iterable[int], *, tree: bool = True) -> Sample:
    """CPU seconds (utime+stime, plus reaped children's) and summed VmRSS."""
    roots = list(pids)
    every = descendants(roots) if tree else roots
    user = system = 0.0
    rss = 0
    counted = 0
    for pid in every:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        counted += 1
        # After ')' : state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        user += (int(fields[11]) + int(fields[13])) / CLK_TCK
        system += (int(fields[12]) + int(fields[14])) / CLK_TCK
        rss += _rss(pid)
    return Sample(cpu=user + system, user=user, system=system, rss=rss, pids=counted)


def per_process(roots: Iterable[int]) -> list[ProcSample]:
    """``roots`` and their descendants one by one (a supervisor and its workers):
    own CPU time (not reaped children's) and VmRSS of each live process."""
    out: list[ProcSample] = []
    for pid in descendants(roots):
        raw = _read_stat(pid)
        if raw is None:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        out.append(ProcSample(pid=pid, ppid=int(fields[1]), name=name, cpu=cpu, rss=_rss(pid)))
    return out


def cmdline(pid: int) -> str:
    """The command line of ``pid`` (empty if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def environ_value(pid: int, key: str) -> str | None:
    """One variable of ``pid``'s environment (None if unset or unreadable)."""
    prefix = key.encode() + b"="
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for item in f.read().split(b"\0"):
                if item.startswith(prefix):
                    return item[len(prefix) :].decode(errors="replace")
    except OSError:
        pass
    return None
