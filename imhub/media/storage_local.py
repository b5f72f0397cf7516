"""Local-directory backend (the default): ``<media_dir>/<first 2 hex>/<name>``.

Sharding by the name's first two hex digits keeps directories small (256 of them)
for nginx or the app to serve. Writes go to a temporary file in the same directory
and are renamed into place, so a half-written file is never visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from pathlib import Path

from imhub.media.names import is_valid_name, join_url


class LocalStorage:
    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self._base_url = base_url

    def path(self, name: str) -> Path:
        """Where ``name`` lives on disk; ValueError for anything not a generated name,
        so no request can reach outside the media directory."""
        if not is_valid_name(name):
            raise ValueError(f"invalid media name: {name!r}")
        return self.root / name[:2] / name

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, self.path(name), data)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{secrets.token_hex(8)}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    async def get(self, name: str) -> bytes:
        return await asyncio.to_thread(self.path(name).read_bytes)

    async def delete(self, name: str) -> None:
        path = self.path(name)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)

    def url(self, name: str) -> str:
        return join_url(self._base_url, name)
