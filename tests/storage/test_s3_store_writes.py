"""The S3 store writing uploads against a real S3 service over HTTP (no mocks): SeaweedFS.
Parts and the requests they cost, staged pieces (below a part) served from the store's own copy or
read back, abandoned writes, finishing, and terminating an upload.

The session fixture `s3_endpoint` (tests/conftest.py) starts SeaweedFS's S3 gateway once per
session (tests/support/seaweedfs.py); every test gets a store on a bucket of its own (a valid
DNS-style name, `store` in tests/support/s3_store.py), so the bucket's contents after a test are
that test's. As AWS does, SeaweedFS checks every request's signature, refuses parts below S3's
5 MiB minimum (but the last) with EntityTooSmall, gives multipart objects `<md5>-<parts>` ETags
and reports when each multipart upload was initiated. No test here needs moto's emulator.
"""

from __future__ import annotations

import math
import secrets

import pytest

from tests.support.s3_store import (
    KIB,
    MIB,
    PART,
    assert_bucket_holds_only,
    body,
    new_upload,
    payload,
    settings_for,
    sha256,
    stored_bytes,
    upload_in_chunks,
    write,
)

# fixtures, imported by name for pytest to find them
from tests.support.s3_store import store as store
from tests.support.s3server import leftover_objects, object_etag, pending_multipart_uploads
from video_upload.storage.base import StorageError, StoredUpload
from video_upload.storage.s3 import S3Store

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
