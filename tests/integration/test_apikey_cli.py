"""``imhub apikey create|list|revoke``: the key is printed once (stdout, for scripts),
listings show only its prefix, a revoked key is refused by the server API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from imhub.cli import main
from imhub.config import Settings
from imhub.errors import Refused
from imhub.services.apikeys import ApiKeyService
from imhub.store.db import Database
from imhub.store.integration import IntegrationStore
from imhub.store.migrate import migrate


def test_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMHUB_DATA_DIR", str(tmp_path))
    settings = Settings(data_dir=tmp_path)
    asyncio.run(migrate(settings.effective_database_url))
    runner = CliRunner()
    created = runner.invoke(main, ["apikey", "create", "--name", "shop", "--scopes", "read,users"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("imk_") and len(key) > 40

    async def check(k: str) -> int | None:
        db = Database(settings.effective_database_url)
        try:
            row = await ApiKeyService(settings, IntegrationStore(db)).authenticate(k)
            return row.id
        finally:
            await db.dispose()

    assert asyncio.run(check(key)) == 1
    listed = runner.invoke(main, ["apikey", "list"])
    assert listed.exit_code == 0 and "shop" in listed.output and "read,users" in listed.output
    assert key not in listed.output and key[:12] in listed.output
    bad = runner.invoke(main, ["apikey", "create", "--name", "x", "--scopes", "root"])
    assert bad.exit_code == 1 and "scopes" in bad.output
    assert runner.invoke(main, ["apikey", "revoke", "1"]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["apikey", "list"]).output
    assert runner.invoke(main, ["apikey", "revoke", "1"]).exit_code == 1

    with pytest.raises(Refused):
        asyncio.run(check(key))
