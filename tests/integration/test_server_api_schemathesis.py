"""Fuzz the live server against the server API's own document
(``/server/v1/openapi.json``) with schemathesis, as tests/integration/
test_openapi_schemathesis.py does for the client API: every reply to a generated
request (valid and invalid) must be no 5xx, a documented status, JSON, and valid
against the documented schema."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode

from imhub.config import Settings
from imhub.services.apikeys import ApiKeyService
from imhub.store.db import Database
from imhub.store.integration import IntegrationStore
from imhub.web.server_api import PREFIX, ROUTES
from tests.integration.test_openapi_schemathesis import LiveServer, fuzz


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """Base URL and the Bearer header of an all-scopes key; users a, b and group 1
    exist for the fuzzer to hit."""
    data_dir: Path = tmp_path_factory.mktemp("server-openapi") / "data"
    conf = Settings(data_dir=data_dir, server_api_requests_per_minute=100_000)
    server = LiveServer(conf)
    base = server.start()

    async def new_key() -> str:
        db = Database(conf.effective_database_url)
        try:
            return (await ApiKeyService(conf, IntegrationStore(db)).create("fuzz", "users,messages,groups,read"))[1]
        finally:
            await db.dispose()

    try:
        headers = {"Authorization": f"Bearer {asyncio.run(new_key())}"}
        for ext in ("a", "b"):
            requests.post(f"{base}{PREFIX}/users", json={"ext_id": ext}, headers=headers, timeout=10)
        requests.post(f"{base}{PREFIX}/groups", json={"owner": "a", "name": "g", "members": ["b"]},
                      headers=headers, timeout=10)
        yield base, headers
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(live: tuple[str, dict[str, str]]) -> schemathesis.BaseSchema:
    base, _ = live
    return schemathesis.openapi.from_url(f"{base}{PREFIX}/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), [(r.method, PREFIX + r.path) for r in ROUTES])
def test_server_api_conforms(
    api_schema: schemathesis.BaseSchema, live: tuple[str, dict[str, str]], method: str, path: str,
    mode: GenerationMode,
) -> None:
    base, headers = live
    fuzz(api_schema[path][method], mode, base, headers)
