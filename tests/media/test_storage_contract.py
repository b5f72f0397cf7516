"""One contract, every storage backend: local directory and S3 (a real moto server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imhub.config import Settings
from imhub.media.names import new_stem
from imhub.media.storage import Storage, build_storage


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Storage]:
    if request.param == "s3":
        settings = request.getfixturevalue("s3_settings")
    yield build_storage(settings)


def name(ext: str = "png", thumb: bool = False) -> str:
    return f"{new_stem()}{'_t' if thumb else ''}.{ext}"


async def test_put_get_round_trip(storage: Storage) -> None:
    n = name()
    await storage.put(n, b"\x89PNG data", "image/png")
    assert await storage.get(n) == b"\x89PNG data"


async def test_put_overwrites(storage: Storage) -> None:
    n = name("mp3")
    await storage.put(n, b"one", "audio/mpeg")
    await storage.put(n, b"two", "audio/mpeg")
    assert await storage.get(n) == b"two"


async def test_get_missing_is_file_not_found(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        await storage.get(name())


async def test_delete_is_idempotent(storage: Storage) -> None:
    n = name("jpg", thumb=True)
    await storage.put(n, b"x", "image/jpeg")
    await storage.delete(n)
    await storage.delete(n)
    with pytest.raises(FileNotFoundError):
        await storage.get(n)


async def test_url_is_base_plus_name(storage: Storage) -> None:
    n = name()
    assert storage.url(n) == f"/mnt/{n}"


async def test_large_object(storage: Storage) -> None:
    n = name("mp4")
    blob = bytes(range(256)) * 8192  # 2 MiB
    await storage.put(n, blob, "video/mp4")
    assert await storage.get(n) == blob


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b.png", "x.html", "ABCDEF0123456789ABCDEF0123456789.png", ""])
async def test_refuses_names_it_did_not_generate(storage: Storage, bad: str) -> None:
    with pytest.raises(ValueError):
        await storage.put(bad, b"x", "image/png")
    with pytest.raises(ValueError):
        await storage.get(bad)
