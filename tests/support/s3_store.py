"""An S3 store on a fresh bucket per test, and helpers that write, finish and inspect uploads."""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.s3server import (
    ACCESS_KEY,
    SECRET_KEY,
    leftover_objects,
    object_bytes,
    pending_multipart_uploads,
)
from video_upload.config import Settings
from video_upload.storage.base import StoredUpload
from video_upload.storage.s3 import S3Store

KIB = 1024
MIB = 1024 * KIB
PART = 5 * MIB


def settings_for(endpoint: str, bucket: str, **overrides: Any) -> Settings:
    """A store's settings; its pieces are staged in the bucket unless `s3_staging` says else
    (the database's place needs a database: `tests/storage/test_s3_store_database_staging.py`)."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        storage_backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket_name=bucket,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SecretStr(SECRET_KEY),
        s3_part_size=PART,
        **{"s3_staging": "bucket", **overrides},
    )


# A test module imports it by name (`from ... import store as store`) for pytest to find it.
@pytest.fixture
async def store(s3_endpoint: str) -> AsyncIterator[S3Store]:
    opened = await S3Store.open(settings_for(s3_endpoint, f"store-{secrets.token_hex(4)}"))
    opened.request_counts.clear()
    yield opened
    await opened.close()


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def body(data: bytes, piece: int = 64 * KIB) -> AsyncIterator[bytes]:
    """A request body as the HTTP layer delivers it: small pieces."""
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def write(store: S3Store, upload: StoredUpload, data: bytes) -> StoredUpload:
    """One PATCH whose result the service commits: the next committed view."""
    result = await store.write(upload, body(data))
    assert result.offset == upload.offset + len(data)
    return StoredUpload(upload.key, result.offset, result.state)


async def new_upload(store: S3Store) -> StoredUpload:
    key = secrets.token_hex(16)
    return StoredUpload(key, 0, await store.create(key))


async def upload_in_chunks(store: S3Store, data: bytes, chunks: Sequence[int]) -> StoredUpload:
    assert sum(chunks) == len(data)
    upload = await new_upload(store)
    for size in chunks:
        upload = await write(store, upload, data[upload.offset : upload.offset + size])
    return StoredUpload(upload.key, upload.offset, await store.finish(upload))


def stored_bytes(store: S3Store, endpoint: str, upload: StoredUpload) -> bytes:
    return object_bytes(endpoint, store.bucket, store.prefix + upload.key)


def assert_bucket_holds_only(store: S3Store, endpoint: str, *keys: str) -> None:
    assert sorted(leftover_objects(endpoint, store.bucket)) == sorted(
        store.prefix + k for k in keys
    )
    assert pending_multipart_uploads(endpoint, store.bucket) == []
