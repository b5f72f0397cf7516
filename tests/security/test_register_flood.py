"""Unauthenticated CPU burn through registration (issue #16 item 6): a per-address
limit, and a small pool of hashing slots so a flood of registrations cannot take the
CPU that real users' logins need."""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

import imhub.services.accounts as accounts
from imhub.app import build_app
from imhub.config import Settings
from imhub.store.migrate import migrate
from tests.conftest import act_as_web_client
from tests.serverproc import ServerProcess

_mobiles = itertools.count(13500000000)


async def register(client: TestClient) -> tuple[int, dict[str, object]]:
    r = await client.post("/user/register", data={"mobile": str(next(_mobiles)), "passwd": "secret12"})
    return r.status, await r.json()


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", register_max_per_ip=3, password_hash_wait_seconds=0.2)
    await migrate(settings.effective_database_url)
    async with TestClient(TestServer(build_app(settings))) as c:
        act_as_web_client(c)
        yield c


async def test_registrations_per_address_are_limited(small: TestClient) -> None:
    results = [await register(small) for _ in range(5)]
    assert [status for status, _ in results] == [200, 200, 200, 429, 429]
    assert results[3][1]["msg"] == "too many registrations from your address, try again later"
    # Invalid requests cost no hash and are not counted (nor allowed).
    r = await small.post("/user/register", data={"mobile": "12", "passwd": "secret12"})
    assert (await r.json())["msg"] == "mobile must be 5-20 digits"


async def test_hashing_slots_refuse_the_excess(small: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow_hash(password: str) -> str:
        await asyncio.sleep(0.5)  # one slot (the default), busy longer than the 0.2 s wait
        return "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

    monkeypatch.setattr(accounts, "hash_password", slow_hash)
    results = await asyncio.gather(*(register(small) for _ in range(3)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 503, 503], results
    busy = next(body for status, body in results if status == 503)
    assert busy["msg"] == "server busy, try again shortly" and busy["retry_after"] == 5


def _post(url: str, data: dict[str, str]) -> dict[str, object]:
    body = urllib.parse.urlencode(data).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=30) as resp:
        result: dict[str, object] = json.loads(resp.read())
        return result


def _login_ms(url: str, mobile: str) -> float:
    started = time.perf_counter()
    assert _post(url + "/user/login", {"mobile": mobile, "passwd": "secret12"})["code"] == 0
    return (time.perf_counter() - started) * 1000


@pytest.mark.slow
def test_bystander_login_stays_fast_under_a_register_flood(tmp_path: Path) -> None:
    """8 parallel registration loops (the review's flood: a bystander's login went
    from 142 ms to 1.26 s median); the address limit is lifted so only the hashing
    slots protect. Real argon2 cost (a server process)."""
    server = ServerProcess(tmp_path / "data", IMHUB_LOG_LEVEL="warning", IMHUB_REGISTER_MAX_PER_IP="100000",
                           IMHUB_LOGIN_MAX_ATTEMPTS="1000").start()
    try:
        assert _post(server.url + "/user/register", {"mobile": "13512345678", "passwd": "secret12"})["code"] == 0
        quiet = statistics.median(_login_ms(server.url, "13512345678") for _ in range(7))
        stop = threading.Event()
        outcomes: list[object] = []

        def flood(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    outcomes.append(_post(server.url + "/user/register",
                                          {"mobile": f"1{n}{i:09}", "passwd": "junk-password"})["code"])
                except OSError as exc:  # urllib raises on 503
                    outcomes.append(getattr(exc, "code", repr(exc)))

        threads = [threading.Thread(target=flood, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            loaded = statistics.median(_login_ms(server.url, "13512345678") for _ in range(7))
        finally:
            stop.set()
            for t in threads:
                t.join()
        ratio = loaded / quiet
        print(f"bystander login: quiet {quiet:.0f} ms, under flood {loaded:.0f} ms (x{ratio:.2f}); "
              f"flood requests {len(outcomes)}, of them 503: {outcomes.count(503)}")
        # Whether any were refused (503) depends on the machine: on a quick one the queue
        # drains within IMHUB_PASSWORD_HASH_WAIT_SECONDS. The bystander's latency is the point.
        assert ratio < 3.0, f"login {quiet:.0f} ms quiet -> {loaded:.0f} ms under the flood"
    finally:
        server.stop()
