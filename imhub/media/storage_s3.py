"""S3-compatible backend (AWS S3, MinIO, Ceph RGW, Garage...) through boto3.

boto3 is synchronous; its clients are thread-safe, so one client is shared and every
call runs in a worker thread. Each object carries the same Content-Type, Cache-Control
and Content-Disposition the app would send, so a bucket or CDN in front of it serves
media exactly as safely as ``/mnt/`` does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from imhub.config import Settings
from imhub.media.names import is_valid_name, join_url, serving_headers


class S3Storage:
    def __init__(self, client: Any, bucket: str, prefix: str, base_url: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._base_url = base_url

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        client = boto3.client(
            "s3",
            endpoint_url=settings.media_s3_endpoint_url or None,
            region_name=settings.media_s3_region,
            # Empty means boto3's usual chain (AWS_* variables, instance role, ...).
            aws_access_key_id=settings.media_s3_access_key or None,
            aws_secret_access_key=settings.media_s3_secret_key.get_secret_value() or None,
            config=Config(
                s3={"addressing_style": "path"} if settings.media_s3_endpoint_url else {},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        return cls(client, settings.media_s3_bucket, settings.media_s3_prefix, settings.media_base_url)

    def _key(self, name: str) -> str:
        if not is_valid_name(name):
            raise ValueError(f"invalid media name: {name!r}")
        return self._prefix + name

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        key = self._key(name)
        headers = serving_headers(name)
        extra: dict[str, str] = {"CacheControl": headers["Cache-Control"]}
        if "Content-Disposition" in headers:
            extra["ContentDisposition"] = headers["Content-Disposition"]
        await asyncio.to_thread(
            self._client.put_object,
            Bucket=self._bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            **extra,
        )

    async def get(self, name: str) -> bytes:
        key = self._key(name)

        def fetch() -> bytes:
            try:
                obj = self._client.get_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    raise FileNotFoundError(name) from None
                raise
            body: bytes = obj["Body"].read()
            return body

        return await asyncio.to_thread(fetch)

    async def delete(self, name: str) -> None:
        # S3 DeleteObject succeeds for a missing key: idempotent as the interface asks.
        await asyncio.to_thread(self._client.delete_object, Bucket=self._bucket, Key=self._key(name))

    def url(self, name: str) -> str:
        return join_url(self._base_url, name)
