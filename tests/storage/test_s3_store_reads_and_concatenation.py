"""The S3 store's finished objects against a real S3 service over HTTP (no mocks): SeaweedFS.
Reading a finished upload back by byte range, and concatenating finished uploads into one (tus
concatenation) with server-side copies where S3 allows them.

The session fixture `s3_endpoint` (tests/conftest.py) starts SeaweedFS's S3 gateway once per
session (tests/support/seaweedfs.py); every test gets a store on a bucket of its own (a valid
DNS-style name, `store` in tests/support/s3_store.py), so the bucket's contents after a test are
that test's.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import pytest

from tests.support.s3_store import (
    KIB,
    MIB,
    PART,
    assert_bucket_holds_only,
    new_upload,
    payload,
    sha256,
    stored_bytes,
    upload_in_chunks,
)

# fixtures, imported by name for pytest to find them
from tests.support.s3_store import store as store
from video_upload.storage.base import ByteRange, ConcatenatingStore, StorageError, StoredUpload
from video_upload.storage.s3 import READ_CHUNK, S3Store


async def read_all(store: S3Store, upload: StoredUpload, byte_range: ByteRange) -> bytes:
    return b"".join([chunk async for chunk in store.read(upload, byte_range)])


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
