"""Running the aiohttp application on uvloop (one process; see imhub.supervisor for
``--workers``)."""

from __future__ import annotations

import asyncio

import structlog
import uvloop
from aiohttp import web

from imhub.app import build_app
from imhub.config import Settings
from imhub.logs import configure_logging
from imhub.store.migrate import migrate

log = structlog.get_logger("imhub")


def run(settings: Settings, *, migrate_first: bool = True) -> None:
    """Serve in this process, or with ``workers > 1`` supervise that many workers
    (:mod:`imhub.supervisor`; raises SupervisorError for a setup that cannot work)."""
    configure_logging(settings.log_format, settings.log_level)
    if settings.workers > 1:
        from imhub import supervisor

        supervisor.check_settings(settings)
        if migrate_first:  # once, before any worker starts
            asyncio.run(migrate(settings.effective_database_url))
        raise SystemExit(supervisor.run(settings))
    if migrate_first:
        asyncio.run(migrate(settings.effective_database_url))
    uvloop.install()
    app = build_app(settings)
    log.info("serving", url=f"http://{settings.host}:{settings.port}", database=settings.effective_database_url)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, reuse_port=True)
