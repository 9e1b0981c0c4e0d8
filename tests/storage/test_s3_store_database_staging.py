"""The S3 store with its staged pieces in the metadata database (`S3_STAGING=database`, the
default), against SeaweedFS and a real database (SQLite and PostgreSQL): the bucket receives
each byte once, inside its part; every node reads what another staged; nothing is left behind;
and an upload created with `S3_STAGING=bucket` finishes in the bucket after the switch.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.support.databases import database as database
from tests.support.databases import database_url as database_url
from tests.support.s3_store import (
    KIB,
    MIB,
    PART,
    assert_bucket_holds_only,
    body,
    new_upload,
    payload,
    settings_for,
    stored_bytes,
    upload_in_chunks,
    write,
)
from tests.support.s3server import leftover_objects, pending_multipart_uploads
from video_upload.persistence.database import Database
from video_upload.storage.base import StoredUpload
from video_upload.storage.s3 import S3Store


@pytest.fixture
def bucket() -> str:
    return f"staging-{secrets.token_hex(4)}"


async def open_node(endpoint: str, bucket: str, database: Database, **settings: object) -> S3Store:
    """One node's store: its own client and in-memory copy, the shared bucket and database."""
    store = await S3Store.open(
        settings_for(endpoint, bucket, s3_staging="database", **settings), database.staging
    )
    store.request_counts.clear()
    return store


@pytest.fixture
async def store(s3_endpoint: str, bucket: str, database: Database) -> AsyncIterator[S3Store]:
    opened = await open_node(s3_endpoint, bucket, database)
    yield opened
    await opened.close()


@pytest.mark.parametrize(
    "chunks",
    [[MIB] * 12 + [300 * KIB], [3 * MIB, 4 * MIB, 6 * MIB, 13 * KIB], [PART, 2 * MIB, PART]],
    ids=["1 MiB", "uneven", "whole parts and a remainder"],
)
async def test_chunks_of_any_size_end_byte_identical_with_each_byte_sent_once(
    store: S3Store, s3_endpoint: str, chunks: list[int]
) -> None:
    data = payload(sum(chunks), seed=len(chunks))

    upload = await upload_in_chunks(store, data, chunks)

    assert stored_bytes(store, s3_endpoint, upload) == data
    assert_bucket_holds_only(store, s3_endpoint, upload.key)  # no staging object, ever
    assert "PutObject" not in store.request_counts
    assert "GetObject" not in store.request_counts  # every piece came from the store's copy
    assert store.bytes_sent == len(data)
    assert store.request_counts["UploadPart"] == -(-len(data) // PART)


async def test_remainders_wait_in_the_database_and_are_gone_once_their_part_is_up(
    store: S3Store, database: Database, s3_endpoint: str
) -> None:
    data = payload(PART + 2 * MIB, seed=3)
    upload = await new_upload(store)

    upload = await write(store, upload, data[: 3 * MIB])
    assert [s["offset"] for s in upload.state["staged"]] == [0]
    assert await database.staging.get(store.prefix + upload.key, 0, 3 * MIB) == data[: 3 * MIB]
    assert leftover_objects(s3_endpoint, store.bucket) == []

    upload = await write(store, upload, data[3 * MIB : 6 * MIB])  # the part, and 1 MiB staged
    upload = await write(store, upload, data[6 * MIB :])  # deletes the piece the part took

    key = store.prefix + upload.key
    assert await database.staging.get(key, 0, 3 * MIB) is None
    assert [s["offset"] for s in upload.state["staged"]] == [PART, PART + MIB]
    assert upload.state["staging"] == "database"
    finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))
    assert stored_bytes(store, s3_endpoint, finished) == data
    for offset in (PART, PART + MIB):  # finishing deletes the rest
        assert await database.staging.get(key, offset, MIB) is None


async def test_another_node_folds_the_pieces_this_node_staged(
    store: S3Store, database: Database, s3_endpoint: str, bucket: str
) -> None:
    data = payload(2 * PART + 100 * KIB, seed=7)
    upload = await write(store, await new_upload(store), data[: 4 * MIB])
    other = await open_node(s3_endpoint, bucket, database)  # a second node: nothing in memory
    try:
        upload = await write(other, upload, data[4 * MIB : 9 * MIB])
        upload = await write(store, upload, data[9 * MIB :])  # back on the first node
        finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))
    finally:
        await other.close()

    assert stored_bytes(store, s3_endpoint, finished) == data
    assert_bucket_holds_only(store, s3_endpoint, upload.key)


async def test_an_abandoned_write_leaves_no_piece_and_the_next_write_wins(
    store: S3Store, database: Database, s3_endpoint: str
) -> None:
    data = payload(PART + MIB, seed=9)
    committed = await write(store, await new_upload(store), data[:MIB])
    # a write the service never commits (a lost race, a bad checksum): discarded
    abandoned = await store.write(committed, body(payload(2 * MIB, seed=99)))
    await store.discard(committed, abandoned)

    assert await database.staging.get(store.prefix + committed.key, MIB, 2 * MIB) is None
    upload = await write(store, committed, data[MIB:])
    finished = StoredUpload(upload.key, upload.offset, await store.finish(upload))
    assert stored_bytes(store, s3_endpoint, finished) == data


async def test_terminating_and_removing_an_orphan_delete_their_staged_pieces(
    store: S3Store, database: Database, s3_endpoint: str
) -> None:
    terminated = await write(store, await new_upload(store), payload(PART + MIB, seed=11))
    orphan = await write(store, await new_upload(store), payload(2 * MIB, seed=12))

    await store.terminate(terminated)
    await store.remove_key(orphan.key)

    assert await database.staging.get(store.prefix + terminated.key, PART, MIB) is None
    assert await database.staging.get(store.prefix + orphan.key, 0, 2 * MIB) is None
    assert leftover_objects(s3_endpoint, store.bucket) == []
    assert pending_multipart_uploads(s3_endpoint, store.bucket) == []


async def test_an_upload_staged_in_the_bucket_finishes_there_after_the_switch(
    database: Database, s3_endpoint: str, bucket: str
) -> None:
    data = payload(PART + 3 * MIB, seed=13)
    before = await S3Store.open(settings_for(s3_endpoint, bucket, s3_staging="bucket"))
    try:
        upload = await write(before, await new_upload(before), data[: 2 * MIB])
    finally:
        await before.close()
    assert upload.state["staging"] == "bucket"
    after = await open_node(s3_endpoint, bucket, database)  # restarted with S3_STAGING=database
    try:
        upload = await write(after, upload, data[2 * MIB :])
        finished = StoredUpload(upload.key, upload.offset, await after.finish(upload))
    finally:
        await after.close()

    assert stored_bytes(after, s3_endpoint, finished) == data
    assert_bucket_holds_only(after, s3_endpoint, upload.key)  # its staging objects deleted
