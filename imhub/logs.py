"""structlog configuration: readable in a terminal, JSON lines in production.
Tokens never reach a log line: query strings are redacted before logging
(:func:`loggable_path`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from urllib.parse import urlencode

import structlog

# Query parameters whose values never reach a log line (compared case-insensitively,
# after percent-decoding: ``%74oken`` is ``token`` to aiohttp, so it is here too).
SECRET_PARAMS = frozenset({"token", "access_token", "passwd", "password", "oldpasswd", "newpasswd", "ticket"})


def loggable_path(path: str, query: Iterable[tuple[str, str]]) -> str:
    """``path?query`` rebuilt from the *parsed* parameters with each secret's value
    replaced: a regex over the raw query string misses encoded names."""
    kept = [(name, "[redacted]" if name.lower() in SECRET_PARAMS else value) for name, value in query]
    return f"{path}?{urlencode(kept, safe='[]')}" if kept else path


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr, format="%(message)s")
    # aiohttp's access log would print query-string tokens; ours redacts them.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
