"""CPU time and memory of processes (and their descendants) from /proc (Linux).

CPU time: ``/proc/PID/stat`` counts in clock ticks (10 ms), too coarse for a short
phase (a 1,000-delivery burst costs a few ms). So the time of each live thread is read
in nanoseconds from ``/proc/PID/task/TID/schedstat`` (the scheduler's run time; a
thread that exits keeps the time it had at its last sample; time from before the first
sample is taken from the tick count once). Reaped children count in ticks. Without
schedstat (kernels without CONFIG_SCHED_INFO) it is ticks only. The user/system split
stays in ticks.
"""

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
    rss: int  # bytes, summed (pages shared between processes counted in each)
    pids: int  # processes counted
    pss: int = 0  # bytes, summed proportional set size: shared pages split among sharers


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


def _kb_field(path: str, name: bytes) -> int | None:
    """Bytes of a ``Name:   123 kB`` line of a /proc file (None if absent/unreadable)."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _rss(pid: int) -> int:
    return _kb_field(f"/proc/{pid}/status", b"VmRSS:") or 0


def _pss(pid: int) -> int:
    """Proportional set size: what the process really costs when it shares pages with
    others (the supervisor's workers are forked from it and share its imports). Falls
    back to VmRSS where smaps_rollup is missing (kernels before 4.14)."""
    pss = _kb_field(f"/proc/{pid}/smaps_rollup", b"Pss:")
    return _rss(pid) if pss is None else pss


def children(pid: int) -> set[int]:
    """Live (not zombie) child processes of ``pid``."""
    out = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields is not None and int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(name))
    return out


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


# Per process, keyed by (pid, start time): {tid: last seen run time in ns}; ns of its
# threads seen to exit; and the offset for time spent before the first sample.
_threads: dict[tuple[int, int], dict[int, int]] = {}
_exited_ns: dict[tuple[int, int], int] = {}
_offset_ns: dict[tuple[int, int], int] = {}
_CATCH_UP_NS = 2 * 10**9 // CLK_TCK  # two ticks


def _precise_cpu(pid: int, fields: list[str]) -> float:
    """CPU seconds of the process whose stat fields (after the name) are ``fields``.

    The nanosecond run time of its threads (live ones now, exited ones as last seen),
    plus a per-process offset: at the first sample, the tick count minus that sum (the
    time of threads that had exited before), raised again whenever the tick count gets
    ahead by more than two ticks (threads born and gone between samples). Every term
    only grows, so the value never goes backwards; between samples it is exact to the
    nanosecond unless a thread came and went unseen."""
    ticks_ns = (int(fields[11]) + int(fields[12])) * 10**9 // CLK_TCK
    key = (pid, int(fields[19]))  # starttime: a reused pid is another process
    try:
        names = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return ticks_ns / 1e9
    now: dict[int, int] = {}
    for name in names:
        try:
            with open(f"/proc/{pid}/task/{name}/schedstat", "rb") as f:
                now[int(name)] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # exiting: counted below from its last sample
    if not now:
        return ticks_ns / 1e9  # no schedstat on this kernel
    seen = _threads.get(key)
    if seen is None:
        _offset_ns[key] = max(0, ticks_ns - sum(now.values()))
        seen = {}
    gone = sum(ns for tid, ns in seen.items() if tid not in now)
    if gone:
        _exited_ns[key] = _exited_ns.get(key, 0) + gone
    for tid, ns in now.items():
        now[tid] = max(ns, seen.get(tid, 0))
    _threads[key] = now
    total = sum(now.values()) + _exited_ns.get(key, 0) + _offset_ns[key]
    if ticks_ns - total > _CATCH_UP_NS:
        _offset_ns[key] += ticks_ns - total
        total = ticks_ns
    return total / 1e9


def sample(pids: Iterable[int], *, tree: bool = True, pss: bool = False) -> Sample:
    """CPU seconds (own, precise; plus reaped children's), summed VmRSS and, with
    ``pss``, summed PSS (reading smaps_rollup walks the memory map: a little slower)."""
    roots = list(pids)
    every = descendants(roots) if tree else roots
    user = system = cpu = 0.0
    rss = pss_total = 0
    counted = 0
    for pid in every:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        counted += 1
        # After ')' : state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        user += (utime + cutime) / CLK_TCK
        system += (stime + cstime) / CLK_TCK
        cpu += _precise_cpu(pid, fields) + (cutime + cstime) / CLK_TCK
        rss += _rss(pid)
        if pss:
            pss_total += _pss(pid)
    return Sample(cpu=cpu, user=user, system=system, rss=rss, pids=counted, pss=pss_total)


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
        cpu = _precise_cpu(pid, fields)
        out.append(ProcSample(pid=pid, ppid=int(fields[1]), name=name, cpu=cpu, rss=_rss(pid)))
    return out


def cmdline(pid: int) -> str:
    """The command line of ``pid`` (empty if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
