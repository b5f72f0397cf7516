"""Settings: every one documented, bad ones named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from imhub.config import Settings, SettingsError, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [f"IMHUB_{name.upper()}" for name in Settings.model_fields if f"`IMHUB_{name.upper()}`" not in text]
    assert missing == []


def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMHUB_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="IMHUB_PORT"):
        load_settings()


def test_settings_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "imhub.toml"
    f.write_text('port = 9001\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("IMHUB_SETTINGS_FILE", str(f))
    monkeypatch.setenv("IMHUB_PORT", "9002")
    s = load_settings()
    assert s.host == "0.0.0.0" and s.port == 9002


def test_missing_settings_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMHUB_SETTINGS_FILE", "/nonexistent/imhub.toml")
    with pytest.raises(SettingsError, match="IMHUB_SETTINGS_FILE"):
        load_settings()


def test_origins_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMHUB_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    assert load_settings().allowed_origins == ["https://a.example", "https://b.example"]


def test_redis_url_takes_a_list_of_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().redis_urls == ["redis://127.0.0.1:6379/0"]
    monkeypatch.setenv("IMHUB_REDIS_URL", " redis://a:6379/0, redis://b:6380/0 ,rediss://c:6379/1")
    assert load_settings().redis_urls == ["redis://a:6379/0", "redis://b:6380/0", "rediss://c:6379/1"]
    for bad in ("redis://a:6379/0,redis://a:6379/0", "http://a:6379", ",", "redis://a:6379/0,,redis://b"):
        monkeypatch.setenv("IMHUB_REDIS_URL", bad)
        with pytest.raises(SettingsError, match="IMHUB_REDIS_URL"):
            load_settings()
def test_before_send_url_must_be_https_or_allowed_loopback() -> None:
    assert load_settings(webhook_before_send_url="https://mod.example.com/check").webhook_before_send_url
    for bad in ("http://mod.example.com/check", "ftp://x", "http://127.0.0.1:9/h"):
        with pytest.raises(SettingsError, match="IMHUB_WEBHOOK_BEFORE_SEND_URL"):
            load_settings(webhook_before_send_url=bad)
    assert load_settings(webhook_allow_http_loopback=True, webhook_before_send_url="http://127.0.0.1:9/h")
