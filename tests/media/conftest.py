"""Media test fixtures: a logged-in client, the stored-files view of the media
directory, and a real S3-compatible server (moto) run as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aiohttp.test_utils import TestClient
from media_helpers import login

from imhub.config import Settings


def unavailable(name: str, reason: str) -> None:
    """Same rule as tests/conftest.py's service_unavailable: skip locally, fail in CI."""
    message = f"{name} unreachable: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)


@pytest.fixture
async def authed(client: TestClient) -> TestClient:
    """The shared ``client``, logged in with the session cookie, as the seed client is."""
    await login(client)
    return client


# --- moto: a real S3-compatible server --------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    exe = Path(sys.executable).with_name("moto_server")
    port = _free_port()
    try:
        proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    except OSError as exc:
        unavailable("moto S3 server", repr(exc))
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                unavailable("moto S3 server", f"moto_server did not start on port {port}")
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def s3_settings(tmp_path: Path, moto_endpoint: str) -> Settings:
    """Settings for the S3 backend on a fresh bucket of the moto server."""
    bucket = f"imhub-{uuid.uuid4().hex[:12]}"
    creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **creds).create_bucket(Bucket=bucket)
    return Settings(
        data_dir=tmp_path / "data",
        media_backend="s3",
        media_s3_bucket=bucket,
        media_s3_endpoint_url=moto_endpoint,
        media_s3_access_key="test",
        media_s3_secret_key="test",  # type: ignore[arg-type]
        media_s3_prefix="media/",
    )
