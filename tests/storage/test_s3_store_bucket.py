"""The S3 store and its bucket as a whole, against a real S3 service over HTTP (no mocks):
SeaweedFS. Finding and removing orphaned uploads, the health check, opening on an existing bucket,
and an endpoint nobody answers.

The session fixture `s3_endpoint` (tests/conftest.py) starts SeaweedFS's S3 gateway once per
session (tests/support/seaweedfs.py); every test gets a store on a bucket of its own (a valid
DNS-style name, `store` in tests/support/s3_store.py), so the bucket's contents after a test are
that test's.
"""

from __future__ import annotations

import secrets
import socket
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.s3_store import (
    MIB,
    assert_bucket_holds_only,
    new_upload,
    payload,
    settings_for,
    upload_in_chunks,
    write,
)

# fixtures, imported by name for pytest to find them
from tests.support.s3_store import store as store
from tests.support.s3server import create_bucket
from video_upload.storage.base import OrphanListingStore, StorageError
from video_upload.storage.s3 import S3Store

# -- orphans and health ------------------------------------------------------------------------


async def test_list_keys_finds_orphaned_uploads_and_remove_key_clears_them(
    store: S3Store, s3_endpoint: str
) -> None:
    assert isinstance(store, OrphanListingStore)
    bare = await new_upload(store)  # created, never committed: only a multipart upload
    staged = await write(store, await new_upload(store), payload(MIB, seed=10))
    finished = await upload_in_chunks(store, payload(10, seed=11), [10])
    now = datetime.now(UTC)

    found = await store.list_keys(older_than=now + timedelta(minutes=1))
    assert sorted(found) == sorted([bare.key, staged.key, finished.key])
    # a multipart upload's Initiated date counts as its key's activity, as do objects' dates
    assert await store.list_keys(older_than=now - timedelta(hours=1)) == []

    await store.remove_key(bare.key)
    await store.remove_key(staged.key)

    assert_bucket_holds_only(store, s3_endpoint, finished.key)
    assert await store.list_keys(older_than=now + timedelta(minutes=1)) == [finished.key]


async def test_list_keys_ignores_objects_outside_the_prefix(
    store: S3Store, s3_endpoint: str
) -> None:
    from tests.support.s3server import s3_client

    s3_client(s3_endpoint).put_object(Bucket=store.bucket, Key="elsewhere/thing", Body=b"x")

    assert await store.list_keys(older_than=datetime.now(UTC) + timedelta(minutes=1)) == []


async def test_check_passes_against_a_reachable_bucket(store: S3Store) -> None:
    await store.check()
    assert store.request_counts["HeadBucket"] == 1


async def test_open_uses_an_existing_bucket(s3_endpoint: str) -> None:
    bucket = f"existing-{secrets.token_hex(4)}"
    create_bucket(s3_endpoint, bucket)

    opened = await S3Store.open(settings_for(s3_endpoint, bucket))
    try:
        assert "CreateBucket" not in opened.request_counts
    finally:
        await opened.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_an_unreachable_endpoint_raises_a_retryable_storage_error() -> None:
    settings = settings_for(f"http://127.0.0.1:{free_port()}", "nowhere")

    with pytest.raises(StorageError) as raised:
        await S3Store.open(settings)

    assert raised.value.retryable
    assert type(raised.value).__module__.startswith("video_upload.")
