"""``imhub serve --workers N``: one supervisor, N worker processes on one port.

Each worker is a plain ``imhub serve --workers 1 --no-migrate`` child that binds its own
socket with SO_REUSEPORT, so the kernel spreads new connections across them. Workers
share state only through the database and the bus, which is why more than one worker
needs ``IMHUB_BUS=redis``.

The supervisor:

- migrates the database once, before any worker starts;
- restarts a worker that exits, after a backoff that doubles per quick death (0.5 s up
  to 30 s) and resets once a worker has lived a minute;
- on SIGTERM/SIGINT forwards SIGTERM to every worker, waits up to
  :data:`STOP_GRACE_SECONDS`, then SIGKILLs whatever is left, and exits 0;
- asks the kernel to SIGTERM its workers if it dies itself (``PR_SET_PDEATHSIG``), so a
  killed supervisor leaves no orphan holding the port;
- points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the first worker
  starts (each worker's metrics are files there; ``/metrics`` on any worker sums them),
  marks a dead worker's live gauges dead, and removes the directory at exit.

A worker drains on SIGTERM (``IMHUB_DRAIN_SECONDS``, docs/operations.md), so the grace
before SIGKILL is the drain time plus 15 s (socket close handshakes, final commits).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import structlog

from imhub.config import Settings

log = structlog.get_logger("imhub.supervisor")

STOP_GRACE_SECONDS = 10.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
HEALTHY_AFTER_SECONDS = 60.0
POLL_SECONDS = 0.1
_PR_SET_PDEATHSIG = 1


class SupervisorError(Exception):
    """A configuration that cannot work with several workers."""


def check_settings(settings: Settings) -> None:
    if settings.workers > 1 and settings.bus == "local":
        raise SupervisorError(
            f"--workers {settings.workers} needs a bus between processes: the local bus cannot reach other "
            "workers, so their users could not talk to each other. Set IMHUB_BUS=redis (and IMHUB_REDIS_URL), "
            "or run one worker."
        )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = BACKOFF_FIRST
    restart_at: float = 0.0
    restarts: int = field(default=0)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers = [Worker(i) for i in range(settings.workers)]
        self._stopping = False
        self.metrics_dir = ""

    def command(self) -> list[str]:
        s = self.settings
        return [sys.executable, "-m", "imhub", "serve", "--host", s.host, "--port", str(s.port),
                "--workers", "1", "--no-migrate"]

    def _spawn(self, w: Worker) -> None:
        env = {**os.environ, "IMHUB_WORKERS": "1", "IMHUB_WORKER_INDEX": str(w.index)}
        if self.metrics_dir:
            env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        w.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.command(), env=env, preexec_fn=_die_with_parent if sys.platform == "linux" else None
        )
        w.started = time.monotonic()
        log.info("worker started", worker=w.index, pid=w.proc.pid)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self._stopping:
            log.info("stopping workers", signal=signal.Signals(signum).name)
        self._stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("supervisor serving", workers=len(self.workers), url=f"http://{self.settings.host}:{self.settings.port}",
                 pid=os.getpid())
        self._fresh_metrics_dir()
        for w in self.workers:
            self._spawn(w)
        try:
            self._watch()
        finally:
            self.stop(max(STOP_GRACE_SECONDS, self.settings.drain_seconds + 15))
            if self.metrics_dir:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return 0

    def _fresh_metrics_dir(self) -> None:
        parent = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        if parent:
            os.makedirs(parent, exist_ok=True)
        self.metrics_dir = tempfile.mkdtemp(prefix="imhub-metrics-", dir=parent)

    def _worker_died(self, pid: int) -> None:
        if not self.metrics_dir:
            return
        from prometheus_client import multiprocess

        try:
            multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        except OSError as exc:
            log.warning("could not clear a dead worker's gauges", pid=pid, error=repr(exc))

    def _watch(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            for w in self.workers:
                if w.proc is not None and w.proc.poll() is not None:
                    lived = now - w.started
                    if lived >= HEALTHY_AFTER_SECONDS:
                        w.backoff = BACKOFF_FIRST
                    w.restart_at = now + w.backoff
                    log.warning("worker exited; restarting", worker=w.index, pid=w.proc.pid,
                                code=w.proc.returncode, lived=round(lived, 1), after=w.backoff)
                    w.backoff = min(BACKOFF_MAX, w.backoff * 2)
                    self._worker_died(w.proc.pid)
                    w.proc = None
                if w.proc is None and now >= w.restart_at:
                    w.restarts += 1
                    self._spawn(w)
            time.sleep(POLL_SECONDS)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        live = [w.proc for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for p in live:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in live:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker did not stop in time; killing it", pid=p.pid)
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
        log.info("all workers stopped")


def run(settings: Settings) -> int:
    return Supervisor(settings).run()
