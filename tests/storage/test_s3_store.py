"""Behaviour of the S3 store against a real S3 service over HTTP (no mocks): SeaweedFS.

The session fixture `s3_endpoint` (tests/conftest.py) starts SeaweedFS's S3 gateway once per
session (tests/support/seaweedfs.py); every test gets a store on a bucket of its own (a valid
DNS-style name), so the bucket's contents after a test are that test's. As AWS does, SeaweedFS
checks every request's signature, refuses parts below S3's 5 MiB minimum (but the last) with
EntityTooSmall, gives multipart objects `<md5>-<parts>` ETags and reports when each multipart
upload was initiated. No test here needs moto's emulator.
"""

from __future__ import annotations

import hashlib
import math
import random
import secrets
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.s3server import (
    ACCESS_KEY,
    SECRET_KEY,
    create_bucket,
    leftover_objects,
    object_bytes,
    object_etag,
    pending_multipart_uploads,
)
from video_upload.config import Settings
from video_upload.storage.base import (
    ByteRange,
    ConcatenatingStore,
    OrphanListingStore,
    StorageError,
    StoredUpload,
)
from video_upload.storage.s3 import READ_CHUNK, S3Store

KIB = 1024
MIB = 1024 * KIB
PART = 5 * MIB


def settings_for(endpoint: str, bucket: str, **overrides: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        storage_backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket_name=bucket,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SecretStr(SECRET_KEY),
        s3_part_size=PART,
        **overrides,
    )


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


async def read_all(store: S3Store, upload: StoredUpload, byte_range: ByteRange) -> bytes:
    return b"".join([chunk async for chunk in store.read(upload, byte_range)])


# -- writing -----------------------------------------------------------------------------------


async def test_aligned_5mib_chunks_cost_one_upload_part_each(
    store: S3Store, s3_endpoint: str
) -> None:
    data = payload(3 * PART)
    upload = await new_upload(store)
    store.request_counts.clear()
    for _ in range(3):
        upload = await write(store, upload, data[upload.offset : upload.offset + PART])

    assert store.request_counts == {"UploadPart": 3}
    assert store.bytes_sent == 3 * PART
    finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))
    assert store.request_counts["CompleteMultipartUpload"] == 1
    assert sha256(stored_bytes(store, s3_endpoint, finished)) == sha256(data)
    assert object_etag(s3_endpoint, store.bucket, store.prefix + upload.key).endswith("-3")


async def test_mixed_chunk_sizes_give_a_byte_identical_object(
    store: S3Store, s3_endpoint: str
) -> None:
    chunks = [1, 100 * KIB, MIB, PART, 7 * MIB, 1, 100 * KIB, 100 * KIB, MIB, 7 * MIB, 1]
    data = payload(sum(chunks), seed=1)

    upload = await upload_in_chunks(store, data, chunks)

    assert upload.state == {
        "object_key": store.prefix + upload.key,
        "finished": True,
        "size": len(data),
    }
    assert sha256(stored_bytes(store, s3_endpoint, upload)) == sha256(data)
    parts = math.ceil(len(data) / PART)
    assert store.request_counts["UploadPart"] == parts
    etag = object_etag(s3_endpoint, store.bucket, store.prefix + upload.key)
    assert etag.endswith(f"-{parts}")
    # every staged remainder came from the store's copy of what it put, none is left behind
    assert store.request_counts["GetObject"] == 0
    assert store.staged_cache.size == 0
    assert_bucket_holds_only(store, s3_endpoint, upload.key)


async def test_one_mib_chunks_cost_about_two_requests_each(store: S3Store) -> None:
    data = payload(12 * MIB, seed=2)
    upload = await new_upload(store)
    store.request_counts.clear()
    for start in range(0, len(data), MIB):
        upload = await write(store, upload, data[start : start + MIB])

    assert store.request_counts["UploadPart"] == 2
    assert sum(store.request_counts.values()) <= 2 * 12


async def test_a_write_streams_many_parts_through_one_part_buffer(store: S3Store) -> None:
    data = payload(3 * PART + 123, seed=3)
    upload = await new_upload(store)
    store.request_counts.clear()

    upload = await write(store, upload, data)

    assert store.request_counts == {"UploadPart": 3, "PutObject": 1}
    [segment] = upload.state["staged"]
    assert (segment["offset"], segment["size"]) == (3 * PART, 123)
    assert segment["etag"]  # the staging PutObject's ETag


# -- staged pieces from the store's own copy ---------------------------------------------------


async def test_one_mib_chunks_never_read_their_staged_pieces_back(
    store: S3Store, s3_endpoint: str
) -> None:
    data = payload(12 * MIB + 300 * KIB, seed=20)
    upload = await new_upload(store)
    store.request_counts.clear()
    for start in range(0, len(data), MIB):
        upload = await write(store, upload, data[start : start + MIB])
        assert store.staged_cache.size < PART
    finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))

    assert store.request_counts["GetObject"] == 0
    assert store.bytes_received == 0
    assert store.request_counts["UploadPart"] == 3  # two full parts and the last one
    assert store.staged_cache.size == 0
    assert sha256(stored_bytes(store, s3_endpoint, finished)) == sha256(data)
    assert_bucket_holds_only(store, s3_endpoint, finished.key)


async def test_with_the_staged_cache_off_pieces_are_read_back_and_complete(
    s3_endpoint: str,
) -> None:
    """S3_STAGED_CACHE_MB=0: nothing is kept in memory; each staged piece is read back once."""
    store = await S3Store.open(
        settings_for(s3_endpoint, f"store-{secrets.token_hex(4)}", s3_staged_cache_mb=0)
    )
    try:
        data = payload(6 * MIB, seed=21)
        upload = await new_upload(store)
        store.request_counts.clear()
        for start in range(0, len(data), MIB):
            upload = await write(store, upload, data[start : start + MIB])
        finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))
        assert store.staged_cache.size == 0
        assert store.request_counts["GetObject"] == 4 + 1  # a part's four pieces, the last one
        assert sha256(stored_bytes(store, s3_endpoint, finished)) == sha256(data)
    finally:
        await store.close()


@pytest.mark.parametrize("other_size", [MIB, 2 * MIB], ids=["same-length", "longer"])
async def test_a_staging_key_rewritten_by_another_node_is_read_back_not_served_from_memory(
    store: S3Store, s3_endpoint: str, other_size: int
) -> None:
    data = payload(6 * MIB, seed=21)
    upload = await new_upload(store)
    # This node's write stages wrong bytes at offset 0 and is never committed (its lease is
    # lost); the node that takes over stages the right bytes under the same key, and commits.
    await store.write(upload, body(payload(MIB, seed=98)))
    other = await S3Store.open(settings_for(s3_endpoint, store.bucket))
    try:
        committed = await write(other, upload, data[:other_size])
    finally:
        await other.close()
    store.request_counts.clear()

    upload = await write(store, committed, data[other_size:])  # the next PATCH comes back here
    finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))

    assert store.request_counts["GetObject"] == 1  # the other node's piece, from the bucket
    assert sha256(stored_bytes(store, s3_endpoint, finished)) == sha256(data)
    assert_bucket_holds_only(store, s3_endpoint, finished.key)


async def test_a_state_without_staged_etags_is_read_back_and_completes(
    store: S3Store, s3_endpoint: str
) -> None:
    data = payload(7 * MIB + 5, seed=22)
    upload = await new_upload(store)
    store.request_counts.clear()
    for start in range(0, len(data), MIB):
        upload = await write(store, upload, data[start : start + MIB])
        # the state as a release that did not record ETags wrote it
        for segment in upload.state["staged"]:
            segment.pop("etag", None)
    finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))

    assert store.request_counts["GetObject"] == 4 + 3  # 4 pieces folded into part 1, 3 at finish
    assert sha256(stored_bytes(store, s3_endpoint, finished)) == sha256(data)
    assert_bucket_holds_only(store, s3_endpoint, finished.key)


async def test_pieces_evicted_by_the_global_cap_are_read_back(
    store: S3Store, s3_endpoint: str
) -> None:
    store.staged_cache.capacity = 2 * MIB
    data = payload(11 * MIB, seed=23)
    upload = await new_upload(store)
    store.request_counts.clear()
    for start in range(0, len(data), MIB):
        upload = await write(store, upload, data[start : start + MIB])
        assert store.staged_cache.size <= 2 * MIB
    finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))

    # of each part's four staged pieces the first two were evicted; the last piece is a hit
    assert store.request_counts["GetObject"] == 2 * 2
    assert store.staged_cache.hits == 2 * 2 + 1
    assert sha256(stored_bytes(store, s3_endpoint, finished)) == sha256(data)
    assert_bucket_holds_only(store, s3_endpoint, finished.key)


@pytest.mark.parametrize("discarded", [True, False], ids=["discarded", "crashed"])
async def test_abandoned_write_is_overwritten_by_the_next_write_from_the_committed_state(
    store: S3Store, s3_endpoint: str, discarded: bool
) -> None:
    data = payload(7 * MIB, seed=4)
    committed = await write(store, await new_upload(store), data[: 3 * MIB])  # staged
    # A write the service never commits (crash, bad checksum): it folds the staged 3 MiB into
    # part 1, uploads parts 2 and 3 and stages a remainder, all with bytes that are wrong.
    garbage = payload(12 * MIB + 512 * KIB, seed=99)
    abandoned = await store.write(committed, body(garbage))
    assert len(abandoned.state["parts"]) == 3
    if discarded:
        await store.discard(committed, abandoned)
        assert store.prefix + committed.key + ".staging/" + f"{15 * MIB:020d}" not in (
            leftover_objects(s3_endpoint, store.bucket)
        )

    upload = await write(store, committed, data[3 * MIB :])  # the client resends from 3 MiB
    finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))

    assert sha256(stored_bytes(store, s3_endpoint, finished)) == sha256(data)
    assert_bucket_holds_only(store, s3_endpoint, finished.key)


async def test_finishing_again_after_a_lost_commit_is_harmless(
    store: S3Store, s3_endpoint: str
) -> None:
    data = payload(PART + 300 * KIB, seed=5)
    upload = await write(store, await new_upload(store), data)

    first = await store.finish(upload)
    again = await store.finish(upload)  # the finished state was never committed

    assert again == first
    assert stored_bytes(store, s3_endpoint, upload) == data
    assert_bucket_holds_only(store, s3_endpoint, upload.key)


async def test_zero_byte_upload_finishes_as_an_empty_object(
    store: S3Store, s3_endpoint: str
) -> None:
    upload = await new_upload(store)

    state = await store.finish(upload)

    assert state["size"] == 0
    assert stored_bytes(store, s3_endpoint, upload) == b""
    assert_bucket_holds_only(store, s3_endpoint, upload.key)
    assert await store.finish(upload) == state


async def test_writing_an_empty_body_changes_nothing(store: S3Store) -> None:
    upload = await new_upload(store)
    store.request_counts.clear()

    result = await store.write(upload, body(b""))

    assert result.offset == 0
    assert result.state == upload.state
    assert not store.request_counts


async def test_a_state_that_does_not_match_the_offset_is_refused(store: S3Store) -> None:
    upload = await new_upload(store)

    with pytest.raises(StorageError) as raised:
        await store.write(StoredUpload(upload.key, 10, upload.state), body(b"x"))

    assert not raised.value.retryable


# -- terminating -------------------------------------------------------------------------------


async def test_terminating_an_unfinished_upload_leaves_nothing_in_the_bucket(
    store: S3Store, s3_endpoint: str
) -> None:
    upload = await write(store, await new_upload(store), payload(PART + MIB, seed=6))
    assert pending_multipart_uploads(s3_endpoint, store.bucket)

    await store.terminate(upload)

    assert_bucket_holds_only(store, s3_endpoint)
    await store.terminate(upload)  # idempotent


async def test_terminating_a_finished_upload_leaves_nothing_in_the_bucket(
    store: S3Store, s3_endpoint: str
) -> None:
    upload = await upload_in_chunks(store, payload(2 * MIB, seed=7), [MIB, MIB])

    await store.terminate(upload)

    assert_bucket_holds_only(store, s3_endpoint)
    await store.terminate(upload)


# -- reading -----------------------------------------------------------------------------------


async def test_range_read_streams_exactly_the_requested_bytes(store: S3Store) -> None:
    data = payload(PART + 123, seed=8)
    upload = await upload_in_chunks(store, data, [len(data)])
    size = len(data)

    for start, end in [(0, 0), (100, 200), (PART - 10, PART + 10), (size - 1, size - 1)]:
        assert await read_all(store, upload, ByteRange(start, end)) == data[start : end + 1]

    chunks = [chunk async for chunk in store.read(upload, ByteRange(0, size - 1))]
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= READ_CHUNK


async def test_a_reader_that_stops_early_releases_the_object(store: S3Store) -> None:
    data = payload(2 * MIB, seed=9)
    upload = await upload_in_chunks(store, data, [len(data)])
    reader = store.read(upload, ByteRange(0, len(data) - 1))

    first = await anext(reader)
    await reader.aclose()  # type: ignore[attr-defined]

    assert first == data[: len(first)]
    assert await read_all(store, upload, ByteRange(0, 9)) == data[:10]


async def test_reading_a_missing_object_raises_a_non_retryable_storage_error(
    store: S3Store,
) -> None:
    upload = StoredUpload(secrets.token_hex(16), 10, {"finished": True, "size": 10})

    with pytest.raises(StorageError) as raised:
        await read_all(store, upload, ByteRange(0, 9))

    assert not raised.value.retryable


# -- concatenating -----------------------------------------------------------------------------


async def finished_partials(store: S3Store, sizes: Sequence[int]) -> list[StoredUpload]:
    return [
        await upload_in_chunks(store, payload(size, seed=100 + index), [size])
        for index, size in enumerate(sizes)
    ]


def joined(store: S3Store, endpoint: str, partials: Sequence[StoredUpload]) -> bytes:
    return b"".join(stored_bytes(store, endpoint, partial) for partial in partials)


async def test_concatenating_large_partials_copies_them_server_side(
    store: S3Store, s3_endpoint: str
) -> None:
    assert isinstance(store, ConcatenatingStore)
    partials = await finished_partials(store, [6 * MIB, PART, 2 * MIB])
    store.request_counts.clear()
    store.bytes_received = store.bytes_sent = 0
    key = secrets.token_hex(16)

    state = await store.concatenate(key, partials)

    assert store.request_counts["UploadPartCopy"] == 3
    assert store.request_counts["GetObject"] == store.request_counts["UploadPart"] == 0
    assert store.bytes_received == store.bytes_sent == 0
    final = StoredUpload(key, 13 * MIB, state)
    assert state["size"] == 13 * MIB
    assert sha256(stored_bytes(store, s3_endpoint, final)) == sha256(
        joined(store, s3_endpoint, partials)
    )
    assert (
        await read_all(store, final, ByteRange(6 * MIB - 5, 6 * MIB + 5))
        == joined(store, s3_endpoint, partials)[6 * MIB - 5 : 6 * MIB + 6]
    )


async def test_concatenating_small_partials_downloads_only_the_small_ones(
    store: S3Store, s3_endpoint: str
) -> None:
    partials = await finished_partials(store, [MIB, 100 * KIB, 2 * MIB, 1])
    store.request_counts.clear()
    store.bytes_received = 0
    key = secrets.token_hex(16)

    state = await store.concatenate(key, partials)

    final = StoredUpload(key, state["size"], state)
    assert stored_bytes(store, s3_endpoint, final) == joined(store, s3_endpoint, partials)
    assert store.request_counts["GetObject"] == 4  # together they make one small last part
    assert store.request_counts["UploadPart"] == 1
    assert store.request_counts["UploadPartCopy"] == 0
    assert store.bytes_received == 3 * MIB + 100 * KIB + 1


async def test_concatenating_small_partials_between_large_ones_downloads_at_most_a_part(
    store: S3Store, s3_endpoint: str
) -> None:
    partials = await finished_partials(store, [6 * MIB, MIB, 12 * MIB, 1])
    store.request_counts.clear()
    store.bytes_received = store.bytes_copied = 0
    key = secrets.token_hex(16)

    state = await store.concatenate(key, partials)

    final = StoredUpload(key, state["size"], state)
    assert sha256(stored_bytes(store, s3_endpoint, final)) == sha256(
        joined(store, s3_endpoint, partials)
    )
    # the 1 MiB partial is topped up with the head of the 12 MiB one; the rest is copied
    assert store.bytes_received == PART
    assert store.bytes_copied == 6 * MIB + 8 * MIB + 1
    assert_bucket_holds_only(store, s3_endpoint, key, *(p.key for p in partials))


async def test_concatenating_only_empty_partials_gives_an_empty_object(
    store: S3Store, s3_endpoint: str
) -> None:
    partials = [
        StoredUpload(p.key, 0, await store.finish(p))
        for p in [await new_upload(store), await new_upload(store)]
    ]
    key = secrets.token_hex(16)

    state = await store.concatenate(key, partials)

    assert state["size"] == 0
    assert stored_bytes(store, s3_endpoint, StoredUpload(key, 0, state)) == b""


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
