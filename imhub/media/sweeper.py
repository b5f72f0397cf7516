"""The periodic task that deletes anonymous uploads (register-page avatars) that no
registration claimed within ``media_pending_ttl_seconds``."""

from __future__ import annotations

import asyncio
import random

import structlog

from imhub.media.service import MediaService

log = structlog.get_logger("imhub.media")

SWEEP_EVERY_SECONDS = 3600.0


async def run_sweeper(media: MediaService, every: float = SWEEP_EVERY_SECONDS) -> None:
    # Jittered, so the workers of one deployment do not all sweep at the same moment
    # (they would only find each other's rows gone: harmless, but wasted).
    await asyncio.sleep(random.uniform(0, every / 4))
    while True:
        try:
            gone = await media.sweep_unclaimed()
            if gone:
                log.info("unclaimed uploads deleted", count=gone)
        except Exception:
            log.exception("sweeping unclaimed uploads failed")
        await asyncio.sleep(every)
