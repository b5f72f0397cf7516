"""Media settings: named errors, comma-separated kinds, caps per kind."""

from __future__ import annotations

import pytest

from imhub.config import Settings, SettingsError, load_settings
from imhub.media.service import MediaService


def test_s3_needs_a_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMHUB_MEDIA_BACKEND", "s3")
    with pytest.raises(SettingsError, match="IMHUB_MEDIA_S3_BUCKET"):
        load_settings()


def test_file_kinds_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMHUB_MEDIA_FILE_KINDS", "pdf, ZIP")
    assert load_settings().media_file_kinds == ["pdf", "zip"]
    monkeypatch.setenv("IMHUB_MEDIA_FILE_KINDS", "pdf,exe")
    with pytest.raises(SettingsError, match="IMHUB_MEDIA_FILE_KINDS"):
        load_settings()


def test_caps_per_kind_bounded_by_total(tmp_path) -> None:
    s = Settings(data_dir=tmp_path, media_image_max_bytes=5000, max_upload_bytes=4000, media_voice_max_bytes=3000)
    media = MediaService(s)
    assert media.cap_for("image") == 4000 and media.cap_for("voice") == 3000
