"""Shared fixtures: fresh databases per test (SQLite file, or a new PostgreSQL
database), a running imhub server, and the rule for unreachable services: skip with
the reason locally, fail under CI=true."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from imhub.app import build_app
from imhub.config import Settings
from imhub.store.migrate import migrate

PG_HOST = os.environ.get("IMHUB_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("IMHUB_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("IMHUB_TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("IMHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_unavailable(name: str, reason: str) -> None:
    """Skip locally, fail in CI: a test that needs a service must not pass silently."""
    message = f"{name} unreachable: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def redis_or_skip() -> str:
    """The test Redis URL, if something listens there (else skip, or fail under CI)."""
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not port_open(host, int(port)):
        service_unavailable("Redis", f"nothing listens on {host_port}")
    return REDIS_URL


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A brand-new, empty PostgreSQL database (its async URL), dropped afterwards."""
    if not port_open(PG_HOST, PG_PORT):
        service_unavailable("PostgreSQL", f"nothing listens on {PG_HOST}:{PG_PORT}")
    name = f"imhub_test_{uuid.uuid4().hex[:12]}"
    try:
        await _pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        service_unavailable("PostgreSQL", repr(exc))
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'imhub.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each contract test runs once per backend, on a fresh migrated database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'imhub.db'}"
        await migrate(url)
        yield url
        return
    async with fresh_postgres_database() as url:
        await migrate(url)
        yield url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    """An in-process imhub on a real socket, fresh SQLite database. It sends the
    ``Origin`` of the server, as the web client (a same-origin page) does: the session
    cookie authenticates a write only with proof of its origin (tests/security/test_csrf.py
    covers the requests without it)."""
    await migrate(settings.effective_database_url)
    app = build_app(settings)
    async with TestClient(TestServer(app)) as c:
        act_as_web_client(c)
        yield c


def act_as_web_client(c: TestClient) -> None:
    """Send the server's own ``Origin`` on every request, as a same-origin page does."""
    c.session.headers["Origin"] = str(c.make_url("/").origin())


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with the smallest cost for in-process tests: the same code path and
    hash format, without spending ~100 ms of CPU per register/login. Servers started
    as processes (tests/serverproc.py) keep the real cost."""
    from argon2 import PasswordHasher

    monkeypatch.setattr("imhub.services.accounts._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
