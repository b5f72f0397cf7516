"""Helpers for media tests: what is stored, logging in, uploading, an app with other settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from imhub.app import build_app
from imhub.config import Settings
from imhub.store.migrate import migrate
from tests.conftest import act_as_web_client


def stored_files(settings: Settings) -> list[Path]:
    root = settings.effective_media_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def login(client: TestClient, mobile: str = "13800000001") -> str:
    await client.post("/user/register", data={"mobile": mobile, "passwd": "secret1"})
    r = await client.post("/user/login", data={"mobile": mobile, "passwd": "secret1"})
    body = await r.json()
    assert body["code"] == 0, body
    return str(body["data"]["token"])


async def upload(
    client: TestClient,
    data: bytes,
    filename: str = "upload.bin",
    filetype: str | None = None,
    content_type: str = "application/octet-stream",
    field: str = "file",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field(field, data, filename=filename, content_type=content_type)
    if filetype is not None:
        form.add_field("filetype", filetype)
    r = await client.post("/attach/upload", data=form, headers=headers)
    return r.status, await r.json()


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[TestClient]:
    """A logged-in client on an app built from ``settings`` (for non-default caps etc.)."""
    await migrate(settings.effective_database_url)
    async with TestClient(TestServer(build_app(settings))) as c:
        act_as_web_client(c)
        await login(c)
        yield c
