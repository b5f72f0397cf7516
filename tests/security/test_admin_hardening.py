"""The admin API (issue #16 item 12): a short IMHUB_ADMIN_TOKEN stops start-up with a
clear message (and the token is not echoed), and guessing gets 429s."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from imhub.app import build_app
from imhub.config import Settings, SettingsError, load_settings
from imhub.store.migrate import migrate

TOKEN = "a-long-random-admin-token-0123456789abcdef"


@pytest.mark.parametrize("token", ["x", "short-but-not-32-chars-long-0123"[:31]])
def test_short_admin_token_is_refused(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    monkeypatch.setenv("IMHUB_ADMIN_TOKEN", token)
    with pytest.raises(SettingsError, match=r"IMHUB_ADMIN_TOKEN: .*at least 32 characters") as err:
        load_settings()
    assert token not in str(err.value)


def test_long_or_empty_admin_token_is_accepted() -> None:
    assert Settings(admin_token=TOKEN).admin_token.get_secret_value() == TOKEN
    assert Settings().admin_token.get_secret_value() == ""


def test_serve_refuses_to_start_with_a_short_token(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "imhub"
    env = {**os.environ, "IMHUB_ADMIN_TOKEN": "admin", "IMHUB_DATA_DIR": str(tmp_path)}
    out = subprocess.run([str(exe), "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode != 0
    assert "IMHUB_ADMIN_TOKEN" in out.stderr and "at least 32 characters" in out.stderr, out.stderr


@pytest.fixture
async def admin_client(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", admin_token=TOKEN)
    await migrate(settings.effective_database_url)
    async with TestClient(TestServer(build_app(settings))) as c:
        yield c


async def test_wrong_admin_tokens_get_429(admin_client: TestClient) -> None:
    statuses = []
    for i in range(15):
        r = await admin_client.get("/admin/stats", headers={"Authorization": f"Bearer guess-{i}"})
        statuses.append(r.status)
    assert statuses == [401] * 10 + [429] * 5
    r = await admin_client.get("/admin/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 429 and (await r.json())["retry_after"] > 0  # this address must wait
