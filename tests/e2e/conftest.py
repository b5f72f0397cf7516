"""Browser end-to-end fixtures: a real ``imhub serve`` process on a free port with its
own data directory, and Debian's Chromium driven by Playwright (its own browser
download cannot work here). Chromium or Playwright missing: skip locally, fail in CI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("IMHUB_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def web_client_built() -> Path:
    index = ROOT / "imhub" / "web" / "static" / "app" / "index.html"
    if not index.is_file():
        # `make frontend` brings Node.js into the virtualenv when none is on PATH.
        subprocess.run(["make", "-C", str(ROOT), "frontend"], check=True)
    return index


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, web_client_built: Path
) -> Iterator[str]:
    """``imhub serve`` in a subprocess, fresh SQLite data dir; yields its base URL. A
    test module's ``SERVER_ENV`` dict overrides settings (e.g. the consent defaults)."""
    data = tmp_path_factory.mktemp("imhub-e2e")
    port = free_port()
    exe = Path(sys.executable).parent / "imhub"
    env = {
        **os.environ,
        "IMHUB_DATA_DIR": str(data),
        "IMHUB_LOG_LEVEL": "warning",
        "IMHUB_LOGIN_MAX_ATTEMPTS": "1000",
        # The web client's flows written before the consent model (instant friends,
        # joining by id); test_consent_flow.py runs its own server with the defaults.
        "IMHUB_FRIEND_POLICY": "open",
        "IMHUB_GROUP_JOIN_POLICY": "open",
        **getattr(request.module, "SERVER_ENV", {}),
    }
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"imhub serve exited: {(data / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/user/login.shtml", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("imhub serve did not answer within 30 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        service_unavailable("Chromium", f"{CHROMIUM} not found (make test installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        service_unavailable("Playwright", repr(exc))
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:
            service_unavailable("Chromium", f"could not launch {CHROMIUM}: {exc}")
        try:
            yield b
        finally:
            b.close()
