"""Running the aiohttp application on uvloop (one process; see imhub.supervisor for
``--workers``)."""

from __future__ import annotations

import asyncio
import errno
import gc
import signal

import structlog
import uvloop
from aiohttp import web

from imhub import instance, supervisor
from imhub.config import Settings
from imhub.logs import configure_logging

log = structlog.get_logger("imhub")

# Collector thresholds (CPython's default is 700, 10, 10). Every connection adds ~90
# tracked objects that live as long as it does; with the defaults the oldest generation
# was scanned each time it had grown by a quarter (12 full scans of up to 1.1M objects
# while 16k clients connected: ~4 s of CPU, a quarter of the handshake cost, and 0.3-0.6 s
# pauses). Refcounting frees almost everything; the cyclic leftovers of closed sockets
# are still collected, just in larger, rarer batches (measured: 16k connect/close rounds
# x4 kept RSS flat; GC time 39 s -> 8.5 s; handshake ~0.9 -> ~0.6 ms).
GC_THRESHOLDS = (50_000, 20, 100)

# After the drain has closed every socket with 1012: how long handlers may still run
# (clients answering the close frame) before they are cancelled.
CLOSE_WAIT_SECONDS = 5.0


def run(settings: Settings, *, migrate_first: bool = True) -> None:
    """Serve in this process, or with ``workers > 1`` supervise that many workers
    (:mod:`imhub.supervisor`; raises SupervisorError for a setup that cannot work)."""
    # imhub.app (and so the metrics) is imported only after the supervisor has set up
    # multiprocess metrics; alembic only when migrating.
    configure_logging(settings.log_format, settings.log_level)
    if settings.workers > 1:
        supervisor.check_settings(settings)
    # Refuses to start beside a live server it could not talk to (imhub.instance);
    # with --workers the supervisor holds the lock and its forked workers inherit it.
    with instance.hold(settings):
        if settings.workers > 1:
            if migrate_first:  # once, before any worker starts
                _migrate(settings)
            raise SystemExit(supervisor.run(settings, serve_forever))
        if migrate_first:
            _migrate(settings)
        serve_forever(settings)


def _migrate(settings: Settings) -> None:
    from imhub.store.migrate import migrate

    asyncio.run(migrate(settings.effective_database_url))


def serve_forever(settings: Settings) -> None:
    """One worker: serve on uvloop until a signal has drained it."""
    uvloop.install()
    asyncio.run(serve(settings))


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then drain (docs/operations.md): stop accepting,
    finish in-flight requests (at most ``IMHUB_DRAIN_SECONDS``), close sockets with
    1012, let the batch writer commit its queue, exit. A second signal during the
    drain shortens the wait; it never interrupts the commits."""
    from imhub.app import build_app
    from imhub.web.ops import DRAIN

    app = build_app(settings)
    # aiohttp's access log would print query-string tokens; ours (imhub.web.ops) redacts.
    # keepalive_timeout bounds the request head too (slowloris): aiohttp closes a
    # connection whose handler still waits for a complete head when it expires, counted
    # from the connection's start or its last response. Its own default is an hour.
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=CLOSE_WAIT_SECONDS,
        keepalive_timeout=settings.http_head_timeout_seconds,
    )
    await runner.setup()
    # backlog: aiohttp's default 128 overflows in a reconnect storm (the kernel caps it at
    # net.core.somaxconn, see docs/deployment.md).
    # SO_REUSEPORT only where processes share the port through a bus (imhub.instance).
    shared_port = settings.bus != "local"
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=shared_port, backlog=4096)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE and not shared_port:
            raise instance.port_in_use(settings) from None
        raise
    gc.collect()
    gc.freeze()  # what startup built lives as long as the process: never scan it again
    gc.set_threshold(*GC_THRESHOLDS)
    log.info("serving", url=f"http://{settings.host}:{settings.port}", database=settings.effective_database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if not stop.is_set():
            log.info("signal received; draining", signal=signum.name)
            stop.set()
        else:
            log.warning("signal received again; shortening the drain", signal=signum.name)
            app[DRAIN].hurry.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await stop.wait()
        await runner.cleanup()
    finally:
        # Drained: a late repeat of the signal must not kill the process on its way out
        # (the default action would turn a clean exit into "killed by SIGTERM").
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
    log.info("stopped")
