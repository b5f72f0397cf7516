"""Uploads: sniffing, thumbnails, storage backends."""

from __future__ import annotations

from imhub.config import Settings


class MediaService:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
