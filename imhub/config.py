"""Settings, read once at start-up from ``IMHUB_*`` environment variables and an
optional TOML settings file (``IMHUB_SETTINGS_FILE``).

Every field here is documented in the README's configuration table; keep the two in
step. Invalid values stop start-up with a message that names the setting
(see :func:`load_settings`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ADMIN_TOKEN_MIN = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMHUB_", extra="forbid", frozen=True)

    # --- network -------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=1, le=65535, description="TCP port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes sharing the port (SO_REUSEPORT).")
    public_url: str = Field(
        "", description="External base URL (e.g. https://im.example.com); used for Origin checks and links."
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Origins allowed to open the WebSocket and call the API (same-origin always allowed).",
    )

    # --- storage -------------------------------------------------------------------
    data_dir: Path = Field(Path("./data"), description="Directory for the SQLite database and local media.")
    database_url: str = Field(
        "",
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///<data_dir>/imhub.db. "
        "PostgreSQL: postgresql+asyncpg://user@host/db.",
    )
    db_pool_size: int = Field(10, ge=1, le=200, description="Connection pool size (PostgreSQL).")
    db_batch_max: int = Field(256, ge=1, le=10000, description="Most messages written in one transaction.")

    # --- accounts ------------------------------------------------------------------
    token_ttl_seconds: int = Field(30 * 24 * 3600, ge=60, description="Lifetime of a login token.")
    cookie_secure: bool = Field(False, description="Mark the session cookie Secure (set true behind HTTPS).")
    login_max_attempts: int = Field(
        10, ge=1, description="Failed logins allowed per account (or per known device) per window."
    )
    login_max_accounts_per_ip: int = Field(
        10, ge=1, description="Distinct accounts one client address may fail to log in to per window."
    )
    login_window_seconds: int = Field(300, ge=1, description="Window for the login rate limits.")
    login_in_flight_per_account: int = Field(
        2, ge=1, description="Password verifications of one account running at once (more: 429)."
    )
    login_in_flight_per_ip: int = Field(
        8, ge=1, description="Password verifications for one client address running at once (more: 429)."
    )
    device_cookie_secret: SecretStr = Field(
        SecretStr(""),
        description="Key signing the known-device cookie (empty: random per process; set it with several workers).",
    )
    register_max_per_ip: int = Field(20, ge=1, description="Registrations one client address may make per window.")
    register_window_seconds: int = Field(3600, ge=1, description="Window for the registration limit.")
    password_hash_concurrency: int = Field(
        1, ge=1, le=64, description="Registrations/password changes hashing at once per process (logins not counted)."
    )
    password_hash_wait_seconds: float = Field(
        2.0, ge=0, le=60, description="How long a registration waits for a hashing slot before a 503."
    )
    max_groups_per_owner: int = Field(50, ge=1, description="Groups one user may own.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest non-upload HTTP request body.")

    # --- consent and membership (docs/security.md "Who can see what") --------------
    friend_policy: Literal["request", "open"] = Field(
        "request", description="addfriend: request (the other user accepts) or open (mutual at once, the seed's way)."
    )
    friend_request_ttl_seconds: int = Field(30 * 24 * 3600, ge=60, description="Lifetime of a friend request.")
    friend_rerequest_seconds: int = Field(
        24 * 3600, ge=0, description="Wait before asking again someone who declined a friend request."
    )
    friend_requests_per_hour: int = Field(
        30, ge=1, description="Friend requests one user may send per hour (an address: 5 times as many)."
    )
    group_join_policy: Literal["open", "approval", "invite"] = Field(
        "approval", description="Join policy of groups created without one (the seed's createcommunity)."
    )
    group_history_visibility: Literal["joined", "shared"] = Field(
        "joined", description="History visibility of groups created without one."
    )
    max_group_members: int = Field(2000, ge=2, description="Most members of one group.")
    group_joins_per_hour: int = Field(
        60, ge=1, description="Group joins and join requests one user may make per hour (an address: 5 times as many)."
    )
    invites_per_hour: int = Field(
        60, ge=1, description="Group invitations one user may create per hour (an address: 5 times as many)."
    )
    invite_ttl_seconds: int = Field(7 * 24 * 3600, ge=60, description="Default lifetime of a group invitation.")

    # --- real-time -----------------------------------------------------------------
    max_frame_bytes: int = Field(64 * 1024, ge=256, description="Largest WebSocket frame accepted.")
    send_rate_per_second: float = Field(20.0, gt=0, description="Messages one user may send per second (per worker).")
    send_burst: int = Field(60, ge=1, description="Messages one user may send at once before the rate applies.")
    request_rate_per_second: float = Field(
        20.0, gt=0, description="Request units (sync, history, search...) one user may spend per second (per worker)."
    )
    request_burst: int = Field(100, ge=1, description="Request units one user may spend at once.")
    max_connections_per_ip: int = Field(
        1000, ge=0, description="Open WebSockets one client address may hold per worker process (0: no limit)."
    )
    trust_x_real_ip: bool = Field(
        False, description="Take the client address from X-Real-IP (only behind a proxy that sets it)."
    )
    http_head_timeout_seconds: float = Field(
        15.0, gt=0, le=3600,
        description="Close an HTTP connection that has not sent a complete request head this long after "
        "connecting or after its last response (slowloris; also the idle keep-alive time).",
    )
    ping_interval_seconds: float = Field(25.0, gt=0, description="Server ping interval.")
    idle_timeout_seconds: float = Field(75.0, gt=0, description="Close a connection silent this long.")
    send_buffer_bytes: int = Field(
        1024 * 1024, ge=4096, description="Unsent bytes one connection may hold before it is closed as a slow consumer."
    )
    sync_page_size: int = Field(200, ge=1, le=1000, description="Messages per sync/history page.")
    seed_group_events: bool = Field(
        False, description="Send group events (joins, leaves, renames) to seed clients as text messages."
    )
    recall_window_seconds: int = Field(120, ge=0, description="How long a sender may recall a message.")
    edit_window_seconds: int = Field(
        48 * 3600, ge=0, description="How long a sender may edit a text message (IMHUB_EDIT_WINDOW_SECONDS)."
    )
    bus: Literal["local", "redis"] = Field("local", description="Message bus between processes.")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis URL for the redis bus and presence; several, comma-separated, shard them (docs/scaling.md).",
    )
    redis_prefix: str = Field(
        "imhub", pattern=r"^[A-Za-z0-9_.-]{1,40}$",
        description="Prefix of every Redis channel and key (several deployments can share one Redis).",
    )
    bus_wire_version: int = Field(
        3, ge=2, le=3,
        description="Redis bus wire format written (2 and 3 are read): 2 while nodes that read only 2 still run.",
    )

    # --- media ---------------------------------------------------------------------
    media_dir: Path | None = Field(None, description="Where uploads are stored; default <data_dir>/media.")
    media_base_url: str = Field("/mnt/", description="Public base URL of uploaded files (nginx/CDN).")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest upload accepted.")
    media_backend: Literal["local", "s3"] = Field("local", description="Media storage: local directory or S3.")
    media_image_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest image upload.")
    media_voice_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest voice upload.")
    media_video_max_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest video upload.")
    media_file_max_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest other-file upload.")
    media_file_kinds: Annotated[list[Literal["pdf", "zip", "gz", "7z"]], NoDecode] = Field(
        default_factory=list, description="Other file kinds accepted besides images/voice/video (default none)."
    )
    # 89,478,485 is Pillow's own MAX_IMAGE_PIXELS, which stays in force as a second guard.
    # 24 Mpx: what phones produce (a 48 Mpx sensor saves 12 Mpx by default), not more.
    media_image_max_pixels: int = Field(
        24_000_000, ge=1, le=89_478_485, description="Largest image (width x height) decoded."
    )
    media_decode_workers: int = Field(
        2, ge=1, le=32, description="Images/voice/video processed at once per server process (worker processes)."
    )
    media_decode_per_user: int = Field(
        3, ge=1, le=100, description="Uploads one user may have in processing at once (more: 429)."
    )
    media_decode_memory_mb: int = Field(
        1024, ge=0, description="Address-space limit of a media worker process, MiB (0: no limit)."
    )
    media_uploads_per_minute: int = Field(30, ge=1, description="Uploads one user may make per minute (per worker).")
    media_user_quota_bytes: int = Field(
        1024 * 1024 * 1024, ge=0, description="Stored upload bytes one user may hold (0: no quota)."
    )
    media_anonymous_max_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Largest image uploaded without a session (register page avatar)."
    )
    media_anonymous_uploads_per_hour: int = Field(
        10, ge=0, description="Uploads without a session one client address may make per hour (0: none)."
    )
    media_pending_ttl_seconds: int = Field(
        86400, ge=60, description="How long an avatar uploaded before registration waits to be used."
    )
    media_thumb_max_side: int = Field(320, ge=32, le=1024, description="Longest side of a thumbnail, px.")
    media_s3_bucket: str = Field("", validate_default=True, description="S3 bucket (media_backend=s3).")
    media_s3_endpoint_url: str = Field("", description="S3-compatible endpoint (MinIO...); empty for AWS.")
    media_s3_region: str = Field("us-east-1", description="S3 region.")
    media_s3_access_key: str = Field("", description="S3 access key; empty uses boto3's default chain.")
    media_s3_secret_key: SecretStr = Field(SecretStr(""), description="S3 secret key.")
    media_s3_prefix: str = Field("", description="Key prefix for media objects in the bucket.")

    # --- Web Push ------------------------------------------------------------------
    push_enabled: bool = Field(
        True, description="Send a Web Push to a user's subscribed browsers when they have no open connection."
    )
    push_vapid_key_file: Path | None = Field(
        None,
        description="VAPID private key (PEM); created at first start; default <data_dir>/vapid_private.pem. "
        "Every node must use the same file.",
    )
    push_subject: str = Field(
        "", description="VAPID contact (mailto: or https: URL) the push services see; default from public_url."
    )
    push_ttl_seconds: int = Field(86400, ge=0, le=2419200, description="How long a push service keeps a push.")
    push_allow_http: bool = Field(
        False, description="Accept http:// and private/loopback push endpoints (tests with a local push receiver); "
        "otherwise https to public addresses only."
    )

    # --- operations ----------------------------------------------------------------
    drain_seconds: float = Field(
        10.0, ge=0, le=600, description="On SIGTERM, how long a worker waits for in-flight requests and writes."
    )
    admin_token: SecretStr = Field(
        SecretStr(""), description="Bearer token of the /admin/ API and `imhub admin` (empty: admin API off)."
    )

    # --- integration: server API and webhooks (docs/server-api.md) ----------
    server_api_requests_per_minute: int = Field(
        600, ge=1, description="Server API calls one API key may make per minute (per worker)."
    )
    server_api_max_token_ttl_seconds: int = Field(
        365 * 24 * 3600, ge=60, description="Longest lifetime of a login token the server API issues."
    )
    server_api_system_name: str = Field(
        "System", min_length=1, max_length=64,
        description="Nickname of the system account the server API sends system messages as.",
    )

    webhook_allow_http_loopback: bool = Field(
        False, description="Also accept http://127.0.0.1 and http://localhost webhook URLs (tests, development).",
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60, description="How long one webhook delivery may take.")
    webhook_retry_base_seconds: float = Field(
        1.0, gt=0, le=3600, description="Delay before a failed webhook delivery's first retry (doubling after)."
    )
    webhook_retry_max_delay_seconds: float = Field(
        600.0, gt=0, description="Longest delay between two attempts of a webhook delivery."
    )
    webhook_retry_seconds: int = Field(
        24 * 3600, ge=1, description="How long a webhook delivery is retried before it is given up."
    )
    webhook_poll_seconds: float = Field(
        0.5, gt=0, le=60, description="How often the process holding the webhook lease looks for due deliveries."
    )
    webhook_lease_seconds: float = Field(
        15.0, gt=0, le=600, description="Lease of the one process draining the webhook outbox (renewed each poll)."
    )
    webhook_before_send_url: str = Field(
        "", description="Before-send hook: POSTed every message sent on a socket; may reject or rewrite it."
    )
    webhook_before_send_secret: SecretStr = Field(
        SecretStr(""), description="Key signing before-send hook calls (as webhook deliveries are)."
    )
    webhook_before_send_timeout_seconds: float = Field(
        0.5, gt=0, le=10, description="How long a message waits for the before-send hook."
    )
    webhook_before_send_fail_open: bool = Field(
        True, description="When the before-send hook fails or times out: send anyway (true) or refuse (false)."
    )

    # --- logging -------------------------------------------------------------------
    log_format: Literal["console", "json"] = Field("console", description="Log renderer.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # Allow a plain comma-separated env var as well as JSON.
        if isinstance(value, str) and not value.strip().startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("admin_token")
    @classmethod
    def _long_admin_token(cls, value: SecretStr) -> SecretStr:
        # Whoever has it can ban anyone and message everyone: a guessable one is refused.
        if value.get_secret_value() and len(value.get_secret_value()) < ADMIN_TOKEN_MIN:
            raise ValueError(
                f"must be at least {ADMIN_TOKEN_MIN} characters (a random one: "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'), or empty to turn the admin API off"
            )
        return value

    @field_validator("webhook_before_send_url")
    @classmethod
    def _hook_url(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        loopback = info.data.get("webhook_allow_http_loopback") and parts.scheme == "http" and parts.hostname in (
            "127.0.0.1", "localhost", "::1"
        )
        if not (parts.scheme == "https" and parts.hostname) and not loopback:
            raise ValueError("must be an https:// URL (http://127.0.0.1 only with IMHUB_WEBHOOK_ALLOW_HTTP_LOOPBACK)")
        return value

    @field_validator("media_file_kinds", mode="before")
    @classmethod
    def _split_kinds(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [v.strip().lower() for v in value.split(",") if v.strip()]
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_shards(cls, value: str) -> str:
        urls = [u.strip() for u in value.split(",")]
        if not all(urls):
            raise ValueError("an empty URL in the list")
        if len(set(urls)) != len(urls):
            raise ValueError("a URL twice in the list")
        for url in urls:
            if not url.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(f"not a redis://, rediss:// or unix:// URL: {url.partition('@')[2] or url}")
        return value

    @field_validator("media_s3_bucket")
    @classmethod
    def _bucket_for_s3(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("media_backend") == "s3" and not value:
            raise ValueError("required when IMHUB_MEDIA_BACKEND=s3")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        settings_file = os.environ.get("IMHUB_SETTINGS_FILE")
        if settings_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(settings_file)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'imhub.db'}"

    @property
    def redis_urls(self) -> list[str]:
        """The Redis shards, in the order given (the mapping does not depend on it)."""
        return [u.strip() for u in self.redis_url.split(",")]

    @property
    def effective_media_dir(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def effective_vapid_key_file(self) -> Path:
        return self.push_vapid_key_file or self.data_dir / "vapid_private.pem"

    @property
    def effective_push_subject(self) -> str:
        if self.push_subject:
            return self.push_subject
        host = self.public_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] if self.public_url else ""
        return f"mailto:admin@{host or 'localhost'}"


class SettingsError(Exception):
    """Raised with a readable, one-line-per-problem message naming each bad setting."""


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (+ settings file), overrides winning.

    Raises :class:`SettingsError` whose message names each invalid ``IMHUB_*`` setting.
    """
    settings_file = os.environ.get("IMHUB_SETTINGS_FILE")
    if settings_file and not Path(settings_file).is_file():
        raise SettingsError(f"IMHUB_SETTINGS_FILE: no such file: {settings_file}")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            field = Settings.model_fields.get(name)
            secret = field is not None and field.annotation is SecretStr
            got = "" if secret else f" (got {err.get('input')!r})"  # never echo a secret
            lines.append(f"IMHUB_{name.upper()}: {err['msg']}{got}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


def settings_or_exit(**overrides: Any) -> Settings:
    """:func:`load_settings` for the command line: an invalid setting ends the command
    with its message (exit status 2) instead of a traceback."""
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        print(f"imhub: {exc}", file=sys.stderr)
        sys.exit(2)
