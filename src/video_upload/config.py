"""The one typed settings object, read from the environment (and an optional `.env`).

The app factory builds it (or receives one from a test) and passes it down; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024
S3_MIN_PART_SIZE = 5 * MIB
# A part fills in memory, and a remainder below it may wait as one database value (SQLite takes
# values up to 10^9 bytes): parts stay well below both.
S3_MAX_PART_SIZE = 512 * MIB
DEFAULT_UPLOAD_CHUNK_SIZE = 5 * MIB
DEFAULT_DATABASE_MAX_CONNECTIONS = 50
MIN_HMAC_SECRET_BYTES = 32
# What an unset HMAC key setting means.
UNSET_KEYS = {
    "jwt_secret": "to have one generated in DATA_DIR",
    "playback_signing_key": "to have one derived or generated",
}


class Settings(BaseSettings):
    """Service configuration; every field maps to the upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    data_dir: Path = Path("./data")
    database_url: str = ""
    # PostgreSQL only: the most connections one worker process opens (both of its pools, see
    # `persistence.engine.pool_limits`); SQLite uses one pooled and one inline connection.
    database_max_connections: int = Field(default=DEFAULT_DATABASE_MAX_CONNECTIONS, ge=2)
    storage_backend: Literal["local", "s3"] = "local"
    local_storage_path: Path = Path("./data/uploads")
    # When the local store flushes bytes to disk: when an upload finishes (a machine crash makes
    # clients re-send the unflushed tail of unfinished uploads) or after every PATCH.
    local_storage_fsync: Literal["finish", "chunk"] = "finish"

    max_video_size_mb: int = Field(default=500, gt=0)
    max_video_duration_minutes: float = Field(default=5, gt=0)
    upload_expiration_hours: float = Field(default=24, gt=0)
    upload_chunk_size: int = Field(default=DEFAULT_UPLOAD_CHUNK_SIZE, gt=0)
    cleanup_interval_minutes: float = Field(default=0, ge=0)
    upload_lease_seconds: float = Field(default=10, ge=1)
    # A request whose body (or whose answer's reader) moves no bytes for this long ends: a PATCH
    # keeps what it received and lets go of its upload (like tusd's -network-timeout).
    network_timeout_seconds: float = Field(default=60, gt=0)
    # ... and so does a body whose bytes, over each NETWORK_TIMEOUT_SECONDS of waiting for them,
    # average fewer than this a second (a trickle that never quite stalls; 0 turns it off).
    min_body_rate_bytes_per_second: int = Field(default=256, ge=0)
    # Probe every completed upload with FFmpeg (PyAV): real duration, codecs, thumbnail; files
    # that are not videos, or longer than allowed, are rejected. Off only for tests of the
    # transport that upload random bytes.
    video_probe: bool = True

    jwt_secret: SecretStr = SecretStr("")
    jwt_algorithm: Literal["HS256", "HS384", "HS512", "RS256", "ES256"] = "HS256"
    jwt_public_key: str = ""
    jwt_private_key: SecretStr = SecretStr("")
    jwt_audience: str = ""
    jwt_issuer: str = ""

    cors_allow_origins: str = ""
    trust_proxy_headers: bool = False
    # The service's address as clients reach it (`https://uploads.example.org`, maybe with a
    # path prefix): absolute upload URLs are built on it. Empty: from each request's Host.
    public_base_url: str = ""
    # Signed playback URLs (`GET /api/v1/videos/{id}/playback`): how long one stays valid (a
    # <video> element keeps asking for ranges while it plays; S3 allows at most 7 days), and the
    # HMAC key of the local store's signed content URLs. Empty: derived from an HS* JWT secret,
    # or with RS256/ES256 generated into DATA_DIR (set it when nodes share no DATA_DIR).
    playback_url_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    playback_signing_key: SecretStr = SecretStr("")

    aws_access_key_id: str = ""
    aws_secret_access_key: SecretStr = SecretStr("")
    aws_region: str = "us-east-1"
    s3_bucket_name: str = "musictracker-media"
    s3_endpoint_url: str = ""
    # Where clients reach S3, when not at S3_ENDPOINT_URL (the service's own, often a private
    # address): presigned part and playback URLs are signed for this endpoint.
    s3_public_endpoint_url: str = ""
    s3_key_prefix: str = "uploads/"
    s3_part_size: int = Field(default=S3_MIN_PART_SIZE, ge=S3_MIN_PART_SIZE, le=S3_MAX_PART_SIZE)
    # Where a chunk's remainder smaller than a part waits for the rest of its part
    # (storage.s3_staging): the metadata database, or staging objects in the bucket. Uploads
    # keep the place they were created with.
    s3_staging: Literal["database", "bucket"] = "database"
    # Each process keeps up to this many MiB of the staged pieces it put, to build parts without
    # reading them back (storage.s3_staged_cache); 0 turns it off.
    s3_staged_cache_mb: int = Field(default=64, ge=0)

    # Logs: readable lines ("console") or one JSON object per line ("json").
    log_format: Literal["console", "json"] = "console"
    # GET /metrics asks for `Authorization: Bearer <METRICS_TOKEN>` when set.
    metrics_token: SecretStr = SecretStr("")
    # `serve` exposes the metrics on a port of their own, at METRICS_HOST, instead of at /metrics
    # on the API's port (0: on the API's port). That port has no token: keep it private.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"

    # Per-user limits (see lifecycle.quotas), enforced across nodes; 0 turns one off.
    user_max_unfinished_uploads: int = Field(default=0, ge=0)
    user_max_unfinished_mb: int = Field(default=0, ge=0)
    user_max_stored_mb: int = Field(default=0, ge=0)
    user_max_creations_per_minute: int = Field(default=0, ge=0)

    # Webhooks (see lifecycle.webhooks): receivers, comma-separated; the Standard Webhooks
    # signing secret (`whsec_...`); how long a delivery is retried before it is marked failed.
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    webhook_retry_hours: float = Field(default=24, gt=0)
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    webhook_max_backoff_seconds: float = Field(default=300, gt=0)
    # Cleanup deletes deliveries this long after they were delivered; failed ones stay until an
    # operator retries them (`video-upload webhooks retry`).
    webhook_retention_days: float = Field(default=7, gt=0)

    @field_validator("s3_key_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        value = value.lstrip("/")
        return value if not value or value.endswith("/") else value + "/"

    @field_validator("public_base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[\x21-\x7e]*)?", value):
            raise ValueError(
                "PUBLIC_BASE_URL must be an http:// or https:// URL, "
                "such as https://uploads.example.org"
            )
        return value

    @field_validator("jwt_secret", "playback_signing_key")
    @classmethod
    def _hmac_key_long_enough(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        # RFC 7518 asks for HMAC keys at least as long as the hash (32 bytes for HS256); a short
        # key can be brute-forced from anything it signed. Empty: one is made (see UNSET_KEYS).
        key = value.get_secret_value()
        if key and len(key.encode()) < MIN_HMAC_SECRET_BYTES:
            name = str(info.field_name)
            raise ValueError(
                f"{name.upper()} must be at least {MIN_HMAC_SECRET_BYTES} bytes long "
                f"(or unset, {UNSET_KEYS[name]})"
            )
        return value

    @model_validator(mode="after")
    def _jwt_secret_fits_the_hash(self) -> Settings:
        # The same rule for the longer hashes: 48 bytes for HS384, 64 for HS512.
        needed = {"HS384": 48, "HS512": 64}.get(self.jwt_algorithm, 0)
        key = self.jwt_secret.get_secret_value()
        if key and len(key.encode()) < needed:
            raise ValueError(
                f"JWT_SECRET must be at least {needed} bytes long for {self.jwt_algorithm}"
            )
        return self

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Settings:
        if self.webhook_urls and not self.webhook_secret.get_secret_value():
            raise ValueError("WEBHOOK_URL needs WEBHOOK_SECRET (a whsec_... signing secret)")
        return self

    @model_validator(mode="after")
    def _s3_chunks_fill_parts(self) -> Settings:
        # On S3 a chunk that is not a whole part costs a staging object and a second copy of its
        # bytes, so unless UPLOAD_CHUNK_SIZE is set, `upload/init` suggests the part size.
        if self.storage_backend == "s3" and "upload_chunk_size" not in self.model_fields_set:
            self.upload_chunk_size = self.s3_part_size
        return self

    @property
    def webhook_urls(self) -> list[str]:
        return [url.strip() for url in self.webhook_url.split(",") if url.strip()]

    @property
    def max_upload_size(self) -> int:
        return self.max_video_size_mb * MIB

    @property
    def max_duration_seconds(self) -> float:
        return self.max_video_duration_minutes * 60

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'video-upload.db').as_posix()}"

    @property
    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.cors_allow_origins.split(",") if origin.strip()]
