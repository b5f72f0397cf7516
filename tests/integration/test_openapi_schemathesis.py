"""Fuzz the live server against its own ``/openapi.json`` with schemathesis.

The server runs on a real port in a background thread (its own event loop, fresh
SQLite database). Every documented operation is called with generated bodies — valid
and invalid — as a logged-in user, and each reply must be: not a 5xx, a documented
status code, JSON, and valid against the documented schema.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from imhub.app import build_app
from imhub.config import Settings
from imhub.store.migrate import migrate
from imhub.web.openapi import OPERATIONS

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class LiveServer:
    """imhub on 127.0.0.1:<free port>, served from a thread until :meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        await migrate(self._settings.effective_database_url)
        self._runner = web.AppRunner(build_app(self._settings))
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> str:
        self._thread.start()
        assert self._ready.wait(30), "server did not start"
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """Base URL and the Bearer header of a registered, logged-in user (who owns a
    group and has a friend, so ids 1-3 exist for the fuzzer to hit)."""
    data_dir: Path = tmp_path_factory.mktemp("openapi") / "data"
    server = LiveServer(Settings(data_dir=data_dir))
    base = server.start()
    try:
        for mobile in ("13800000001", "13800000002"):
            requests.post(f"{base}/user/register", data={"mobile": mobile, "passwd": "secret1"}, timeout=10)
        login = requests.post(f"{base}/user/login", data={"mobile": "13800000001", "passwd": "secret1"}, timeout=10)
        headers = {"Authorization": f"Bearer {login.json()['data']['token']}"}
        requests.post(f"{base}/contact/addfriend", data={"dstid": 2}, headers=headers, timeout=10)
        login2 = requests.post(f"{base}/user/login", data={"mobile": "13800000002", "passwd": "secret1"}, timeout=10)
        headers2 = {"Authorization": f"Bearer {login2.json()['data']['token']}"}
        requests.post(f"{base}/contact/acceptfriend", data={"id": 1}, headers=headers2, timeout=10)
        requests.post(f"{base}/contact/createcommunity", data={"name": "g"}, headers=headers, timeout=10)
        yield base, headers
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(live: tuple[str, dict[str, str]]) -> schemathesis.BaseSchema:
    base, _ = live
    return schemathesis.openapi.from_url(f"{base}/openapi.json")


# schemathesis' own pytest plugin (``from_fixture``) trips over pytest 9's node API, so
# the cases are drawn with plain Hypothesis: one test per operation, mode and body type.
@pytest.mark.parametrize("media_type", ["application/x-www-form-urlencoded", "application/json"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("path", [op.path for op in OPERATIONS])
def test_api_conforms(
    api_schema: schemathesis.BaseSchema, live: tuple[str, dict[str, str]], path: str, mode: GenerationMode,
    media_type: str,
) -> None:
    base, headers = live
    # Logging out with the shared token would log every later case out; logout is
    # fuzzed anonymously instead (it must succeed either way).
    auth = {} if path == "/user/logout" else headers
    operation = api_schema[path]["POST"]

    @given(case=operation.as_strategy(generation_mode=mode, media_type=media_type))
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base, headers=auth, checks=CHECKS)

    run()


@pytest.mark.parametrize(
    ("path", "method", "mode"),
    [
        ("/attach/upload", "POST", GenerationMode.POSITIVE),
        ("/attach/upload", "POST", GenerationMode.NEGATIVE),
        # A free-form string path parameter has no "invalid" values to generate.
        ("/mnt/{name}", "GET", GenerationMode.POSITIVE),
    ],
)
def test_media_routes_conform(
    api_schema: schemathesis.BaseSchema, live: tuple[str, dict[str, str]], path: str, method: str,
    mode: GenerationMode,
) -> None:
    """The media engineer's routes, held to the same bar (the WebSocket is not fuzzed)."""
    base, headers = live
    fuzz(api_schema[path][method], mode, base, headers)


def fuzz(operation: Any, mode: GenerationMode, base: str, headers: dict[str, str]) -> None:
    """Call ``operation`` with 20 generated cases and check every reply (CHECKS)."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

    run()


def test_document_lists_every_route(live: tuple[str, dict[str, str]]) -> None:
    base, _ = live
    doc = requests.get(f"{base}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {op.path for op in OPERATIONS} | {"/attach/upload", "/mnt/{name}", "/chat"}
    for path in ("/user/register", "/user/login", "/user/find", "/contact/addfriend", "/contact/loadfriend",
                 "/contact/createcommunity", "/contact/joincommunity", "/contact/loadcommunity"):
        assert "post" in doc["paths"][path], path
