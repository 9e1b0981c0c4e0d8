"""Orphan collection: storage no row accounts for (a crash between creating it and committing
its row, a thumbnail that outlived its upload, a cleanup cut short after its claim) is removed
once older than the expiration period, and counted apart from expired uploads.

Uploads are made to expire by moving the service clock past `UPLOAD_EXPIRATION_HOURS` (always
moved back afterwards); cleanups run on the server's own event loop, with its engine, store
and upload locks, the way the in-process periodic task runs them.

Every test runs against a live server on each database x store back end, but those marked
`any_backend`, which run on one (see conftest).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx

from tests.conftest import User
from tests.support.cleanup import run_cleanup, storage_of, upload_id_of, write
from tests.support.live import LiveServer, expired_clock
from tests.support.tus import complete_and_read, create_upload, pattern
from video_upload.storage.base import SidecarStore, StoredUpload

# -- helpers -----------------------------------------------------------------------------------


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def make_orphan(server: LiveServer, data: bytes) -> str:
    """Storage with no row at all, as a crash between creating it and committing the row leaves."""
    key = secrets.token_hex(16)
    store = server.store

    async def create() -> None:
        state = await store.create(key)
        await store.write(StoredUpload(key, 0, state), one_chunk(data))

    server.run(create())
    return key


# -- orphans ---------------------------------------------------------------------------------


def test_orphaned_storage_is_removed_once_older_than_the_expiration_period(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    data = pattern(2000, seed=3)
    kept = create_upload(client, user.headers, session_id, len(data))
    write(client, user, kept, 0, data)
    orphan = make_orphan(server, b"o" * 100)
    assert storage_of(server, orphan) != []

    recent = run_cleanup(server)  # could be an upload whose row is being created right now
    assert orphan not in recent.orphan_keys
    assert storage_of(server, orphan) != []

    with expired_clock(server):
        report = run_cleanup(server)
    assert orphan in report.orphan_keys
    assert report.orphans == len(report.orphan_keys) >= 1
    assert orphan not in report.expired_ids  # counted apart from expired uploads
    assert storage_of(server, orphan) == []
    assert upload_id_of(kept) not in report.orphan_keys
    assert complete_and_read(client, user.bearer, kept) == data


def test_a_thumbnail_left_behind_by_a_gone_upload_is_removed_as_an_orphan(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    """A thumbnail written as its upload was being removed outlives it; nothing else frees it."""
    store = server.store
    assert isinstance(store, SidecarStore)
    kept = create_upload(client, user.headers, session_id, 10)
    write(client, user, kept, 0, b"k" * 10)
    stray = secrets.token_hex(16)
    server.run(store.put_sidecar(stray, "thumbnail.jpg", b"\xff\xd8 stray"))
    server.run(store.put_sidecar(upload_id_of(kept), "thumbnail.jpg", b"\xff\xd8 kept"))
    assert storage_of(server, stray) != []

    with expired_clock(server):
        report = run_cleanup(server)
    assert stray in report.orphan_keys
    assert storage_of(server, stray) == []
    assert upload_id_of(kept) not in report.orphan_keys  # its row is live: thumbnail kept
    assert server.run(store.read_sidecar(upload_id_of(kept), "thumbnail.jpg")) == b"\xff\xd8 kept"


def test_storage_left_by_an_interrupted_cleanup_is_removed_by_a_later_round(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    url = create_upload(client, user.headers, session_id, 50)
    write(client, user, url, 0, b"i" * 25)
    upload_id = upload_id_of(url)
    uploads = server.services.uploads

    async def claim_only() -> bool:  # a cleaner that died between its claim and `terminate`
        async with uploads.database() as db:
            video = await db.videos.by_upload_id(upload_id)
            assert video is not None
            claimed = await db.videos.claim_expired(
                upload_id, status=video.status, offset=video.upload_offset, now=uploads.clock()
            )
            await db.commit()
        return claimed

    with expired_clock(server):
        assert server.run(claim_only())
        assert storage_of(server, upload_id) != []
        report = run_cleanup(server)
    assert upload_id in report.orphan_keys
    assert upload_id not in report.expired_ids
    assert storage_of(server, upload_id) == []
    assert client.head(url, headers=user.headers).status_code == 410
