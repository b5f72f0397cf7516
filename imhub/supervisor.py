"""``imhub serve --workers N``: one supervisor, N worker processes on one port.

The supervisor imports the whole server once, freezes those objects out of the garbage
collector's reach (``gc.freeze``) and then ``fork()``s each worker from itself, so the
~90 MB of interpreter, libraries and code stay shared copy-on-write pages instead of
being loaded N times (what lets 100k connections fit in SPEC §5's 2.5 GiB). Each worker
binds its own socket with SO_REUSEPORT, so the kernel spreads new connections across
them. Workers share state only through the database and the bus, which is why more
than one worker needs ``IMHUB_BUS=redis``. The supervisor itself never starts an event
loop or a thread, which is what makes forking it safe.

The supervisor:

- migrates the database once, before any worker starts;
- restarts a worker that exits, after a backoff that doubles per quick death (0.5 s up
  to 30 s) and resets once a worker has lived a minute;
- on SIGTERM/SIGINT forwards SIGTERM to every worker, waits up to
  :data:`STOP_GRACE_SECONDS`, then SIGKILLs whatever is left, and exits 0;
- asks the kernel to SIGTERM its workers if it dies itself (``PR_SET_PDEATHSIG``), so a
  killed supervisor leaves no orphan holding the port;
- points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the metrics are first
  imported (each worker's metrics are files there; ``/metrics`` on any worker sums them),
  marks a dead worker's live gauges dead, and removes the directory at exit.

A worker drains on SIGTERM (``IMHUB_DRAIN_SECONDS``, docs/operations.md), so the grace
before SIGKILL is the drain time plus 15 s (socket close handshakes, final commits).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
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
# imhub.metrics.MULTIPROC_ENV, not imported from there: importing the metrics would
# import prometheus_client before this process has set the variable.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class SupervisorError(Exception):
    """A configuration that cannot work with several workers."""


def check_settings(settings: Settings) -> None:
    if settings.workers > 1 and settings.bus == "local":
        raise SupervisorError(
            f"--workers {settings.workers} needs a bus between processes: the local bus cannot reach other "
            "workers, so their users could not talk to each other. Set IMHUB_BUS=redis (and IMHUB_REDIS_URL), "
            "or run one worker."
        )


# Imported before the first fork, so every worker shares them (see the module docstring).
PRELOAD = (
    "imhub.server", "imhub.app", "imhub.web.routes", "imhub.web.chat", "imhub.bus.redis",
    "imhub.store.append_ops", "redis.asyncio", "asyncpg", "uvloop",
)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # e.g. asyncpg is only needed for PostgreSQL
            importlib.import_module(name)
    # Objects that exist now are never scanned by the collector again, so a worker's GC
    # runs do not write to (and un-share) the pages they live on.
    gc.collect()
    gc.freeze()


@dataclass
class Worker:
    index: int
    pid: int = 0
    started: float = 0.0
    backoff: float = BACKOFF_FIRST
    restart_at: float = 0.0
    restarts: int = field(default=0)


class Supervisor:
    def __init__(self, settings: Settings, serve_worker: Callable[[Settings], None]) -> None:
        self.settings = settings
        # What each forked worker runs (imhub.server.serve_forever): passed in, so this
        # module does not import the server that imports it.
        self.serve_worker = serve_worker
        self.workers = [Worker(i) for i in range(settings.workers)]
        self._stopping = False
        self.metrics_dir = ""
        self.pid = os.getpid()

    def _spawn(self, w: Worker) -> None:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker; coverage does not follow forks
            os._exit(self._work(w.index))
        w.pid = pid
        w.started = time.monotonic()
        log.info("worker started", worker=w.index, pid=pid)

    def _work(self, index: int) -> int:  # pragma: no cover - runs in the forked worker
        """The worker's whole life; returns its exit code (never raises, never returns
        into the supervisor's code)."""
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)  # until the worker's loop installs its own
            if sys.platform == "linux":
                _die_with_parent()
            if os.getppid() != self.pid:  # the supervisor died before prctl took effect
                return 1
            self.serve_worker(self.settings.model_copy(update={"workers": 1}))
            return 0
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("worker failed", worker=index)
            return 1
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self._stopping:
            log.info("stopping workers", signal=signal.Signals(signum).name)
        self._stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("supervisor serving", workers=len(self.workers), url=f"http://{self.settings.host}:{self.settings.port}",
                 pid=self.pid)
        self._fresh_metrics_dir()
        preload()
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
        """Must run before prometheus_client is first imported: it picks its
        single- or multi-process value class at import time."""
        if "prometheus_client" in sys.modules and not os.environ.get(MULTIPROC_ENV):
            log.warning("prometheus_client imported before the supervisor set up multiprocess metrics")
        parent = os.environ.get(MULTIPROC_ENV) or None
        if parent:
            os.makedirs(parent, exist_ok=True)
        self.metrics_dir = tempfile.mkdtemp(prefix="imhub-metrics-", dir=parent)
        os.environ[MULTIPROC_ENV] = self.metrics_dir

    def _worker_died(self, pid: int) -> None:
        if not self.metrics_dir:
            return
        from prometheus_client import multiprocess

        try:
            multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        except OSError as exc:
            log.warning("could not clear a dead worker's gauges", pid=pid, error=repr(exc))

    def _reap(self, w: Worker) -> int | None:
        """The worker's exit code if it has exited (and is now reaped), else None."""
        try:
            pid, status = os.waitpid(w.pid, os.WNOHANG)
        except ChildProcessError:
            return -1
        return os.waitstatus_to_exitcode(status) if pid else None

    def _watch(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            for w in self.workers:
                code = self._reap(w) if w.pid else None
                if code is not None:
                    lived = now - w.started
                    if lived >= HEALTHY_AFTER_SECONDS:
                        w.backoff = BACKOFF_FIRST
                    w.restart_at = now + w.backoff
                    log.warning("worker exited; restarting", worker=w.index, pid=w.pid,
                                code=code, lived=round(lived, 1), after=w.backoff)
                    w.backoff = min(BACKOFF_MAX, w.backoff * 2)
                    self._worker_died(w.pid)
                    w.pid = 0
                if not w.pid and now >= w.restart_at:
                    w.restarts += 1
                    self._spawn(w)
            time.sleep(POLL_SECONDS)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        live = [w for w in self.workers if w.pid and self._reap(w) is None]
        for w in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while live and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            live = [w for w in live if self._reap(w) is None]
        for w in live:
            log.warning("worker did not stop in time; killing it", pid=w.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(w.pid, 0)
        log.info("all workers stopped")


def run(settings: Settings, serve_worker: Callable[[Settings], None]) -> int:
    return Supervisor(settings, serve_worker).run()
