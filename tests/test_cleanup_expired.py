"""Expired-upload cleanup: an upload past its expiry has its storage freed and its row kept as
`expired` (later requests get 410), while completed, unexpired and busy uploads are left
alone; concurrent cleaners clean each upload once, and thousands of rows go in batches.

Uploads are made to expire by moving the service clock past `UPLOAD_EXPIRATION_HOURS` (always
moved back afterwards); cleanups run on the server's own event loop, with its engine, store
and upload locks, the way the in-process periodic task runs them.

Every test runs against a live server on each database x store back end, but those marked
`any_backend`, which run on one (see conftest).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from tests.conftest import User
from tests.support.cleanup import run_cleanup, storage_of, upload_id_of, write
from tests.support.live import LiveServer, expired_clock
from tests.support.rows import orm_session
from tests.support.tus import (
    TUS_PATH,
    complete_and_read,
    create_upload,
    metadata,
    patch_headers,
    pattern,
)
from video_upload.domain.records import Video
from video_upload.http.services import Services
from video_upload.lifecycle.cleanup import CleanupReport, VideoService
from video_upload.lifecycle.locks import UploadLocks
from video_upload.lifecycle.service import UploadService
from video_upload.persistence.models import VideoRow

# -- helpers -----------------------------------------------------------------------------------


def drain(server: LiveServer) -> None:
    """Clean whatever earlier tests left to expire, so that counts below are exact."""
    with expired_clock(server):
        run_cleanup(server)


def row(server: LiveServer, upload_id: str) -> Video | None:
    async def read() -> Video | None:
        async with server.services.uploads.database() as db:
            return await db.videos.by_upload_id(upload_id)

    return server.run(read())


def another_node(server: LiveServer) -> UploadService:
    """The same database and store, but locks of its own: what a second process would have."""
    services = server.services
    return UploadService(
        server.settings, services.database, services.store, locks=UploadLocks(), clock=server.clock
    )


# -- expired uploads -----------------------------------------------------------------------------


def test_expired_uploads_are_cleaned_their_storage_freed_and_later_requests_get_410(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    part_size = server.settings.s3_part_size
    written = create_upload(client, user.headers, session_id, 50)
    write(client, user, written, 0, b"q" * 20)
    large = create_upload(client, user.headers, session_id, 2 * part_size)
    write(client, user, large, 0, pattern(part_size + 1000))  # one whole part and a remainder
    init = client.post(
        "/api/v1/videos/upload/init",
        json={
            "session_id": session_id,
            "filename": "take.mp4",
            "file_size": 100,
            "duration_seconds": 10,
        },
        headers=user.bearer,
    )
    assert init.status_code == 201, init.text
    rest_upload = init.json()["upload_id"]
    ids = [upload_id_of(written), upload_id_of(large), rest_upload]
    for upload_id in ids:
        assert storage_of(server, upload_id), "the upload should hold storage before cleanup"

    with expired_clock(server):
        report = run_cleanup(server)
        assert client.head(written, headers=user.headers).status_code == 410

    assert set(ids) <= set(report.expired_ids)
    assert report.expired == len(report.expired_ids) >= len(ids)
    for upload_id in ids:
        assert storage_of(server, upload_id) == []
        video = row(server, upload_id)
        assert video is not None and video.status == "expired"  # kept, so later requests see 410
    # With the clock back, only the row's status says the upload expired.
    assert client.head(written, headers=user.headers).status_code == 410
    patch = client.patch(written, headers=patch_headers(user.headers, 20), content=b"q")
    assert patch.status_code == 410
    assert client.delete(large, headers=user.headers).status_code == 410
    status = client.get(f"/api/v1/videos/upload/{rest_upload}/status", headers=user.bearer)
    assert status.status_code == 410
    assert status.json()["error"]["code"] == "upload_expired"
    # A second round does not clean them again.
    with expired_clock(server):
        again = run_cleanup(server)
    assert not set(ids) & set(again.expired_ids)


def test_cleanup_expired_uploads_returns_the_number_cleaned(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    drain(server)
    urls = [create_upload(client, user.headers, session_id, 30) for _ in range(3)]
    write(client, user, urls[0], 0, b"abc")
    with expired_clock(server):
        cleaned = server.run(VideoService(server.services).cleanup_expired_uploads())
    assert cleaned == 3
    assert all(storage_of(server, upload_id_of(url)) == [] for url in urls)


def test_partial_uploads_finished_or_not_and_unfinished_finals_expire_like_any_other(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    def partial(length: int) -> str:
        response = client.post(
            TUS_PATH,
            headers={**user.headers, "Upload-Length": str(length), "Upload-Concat": "partial"},
        )
        assert response.status_code == 201, response.text
        return str(response.headers["Location"])

    unfinished, finished = partial(10), partial(5)
    write(client, user, unfinished, 0, b"1234")
    write(client, user, finished, 0, b"54321")
    final = client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Concat": f"final;{unfinished} {finished}",
            "Upload-Metadata": metadata(session_id=session_id, filename="duet.mp4"),
        },
    )
    assert final.status_code == 201, final.text
    final_url = str(final.headers["Location"])

    with expired_clock(server):
        report = run_cleanup(server)

    # A finished partial exists only to become part of a final upload; when none consumed it
    # before it expired, its bytes would otherwise stay in storage forever.
    expired = {upload_id_of(unfinished), upload_id_of(finished), upload_id_of(final_url)}
    assert expired <= set(report.expired_ids)
    assert storage_of(server, upload_id_of(unfinished)) == []
    assert storage_of(server, upload_id_of(finished)) == []
    for url in (unfinished, finished, final_url):
        assert client.head(url, headers=user.headers).status_code == 410


def test_a_finished_partial_upload_within_its_expiry_is_kept(
    client: httpx.Client, user: User, server: LiveServer
) -> None:
    response = client.post(
        TUS_PATH, headers={**user.headers, "Upload-Length": "5", "Upload-Concat": "partial"}
    )
    url = str(response.headers["Location"])
    write(client, user, url, 0, b"54321")
    report = run_cleanup(server)
    assert upload_id_of(url) not in report.expired_ids
    assert storage_of(server, upload_id_of(url)) != []
    assert client.head(url, headers=user.headers).headers["Upload-Offset"] == "5"


def test_completed_and_unexpired_uploads_are_untouched_and_still_read_back_byte_identical(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    done_data, active_data = pattern(3000, seed=1), pattern(4000, seed=2)
    done = create_upload(client, user.headers, session_id, len(done_data))
    write(client, user, done, 0, done_data)
    with expired_clock(server):
        active = create_upload(client, user.headers, session_id, len(active_data))
        write(client, user, active, 0, active_data[:1500])
        report = run_cleanup(server)
        assert client.head(active, headers=user.headers).status_code == 200

    assert upload_id_of(done) not in report.expired_ids
    assert upload_id_of(active) not in report.expired_ids
    assert upload_id_of(active) not in report.orphan_keys
    assert upload_id_of(done) not in report.orphan_keys
    head = client.head(active, headers=user.headers)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "1500"
    write(client, user, active, 1500, active_data[1500:])
    assert complete_and_read(client, user.bearer, active) == active_data
    assert complete_and_read(client, user.bearer, done) == done_data


def test_an_upload_being_written_in_this_process_is_not_removed(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    url = create_upload(client, user.headers, session_id, 50)
    write(client, user, url, 0, b"w" * 10)
    upload_id = upload_id_of(url)
    services = server.services

    async def cleanup_while_writing() -> CleanupReport:
        async with services.uploads.locks.hold(upload_id):
            return await VideoService(services).cleanup()

    with expired_clock(server):
        busy = server.run(cleanup_while_writing())
        assert upload_id not in busy.expired_ids
        assert busy.skipped >= 1
        assert storage_of(server, upload_id) != []
        video = row(server, upload_id)
        assert video is not None and video.status != "expired"
        later = run_cleanup(server)  # once the writer has let go, a later round cleans it

    assert upload_id in later.expired_ids
    assert storage_of(server, upload_id) == []


def test_an_upload_whose_writer_lease_is_held_on_another_node_is_not_removed(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    url = create_upload(client, user.headers, session_id, 50)
    write(client, user, url, 0, b"w" * 10)
    upload_id = upload_id_of(url)

    async def take_lease() -> bool:
        now = server.clock()
        taken = await server.services.uploads.chunks.take_lease(
            upload_id, "node-b:1:writer", now, now + timedelta(minutes=5)
        )
        return taken is not None

    async def release_lease() -> None:
        assert await server.services.uploads.chunks.release(upload_id, "node-b:1:writer")

    with expired_clock(server):
        assert server.run(take_lease())
        try:
            held = run_cleanup(server)
        finally:
            server.run(release_lease())
        assert upload_id not in held.expired_ids
        assert storage_of(server, upload_id) != []
        released = run_cleanup(server)
    assert upload_id in released.expired_ids


def test_a_writer_that_committed_after_the_cleaner_looked_wins_the_race(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    url = create_upload(client, user.headers, session_id, 50)
    write(client, user, url, 0, b"w" * 10)
    upload_id = upload_id_of(url)
    uploads = server.services.uploads

    async def race() -> tuple[bool, CleanupReport]:
        now = uploads.clock()
        async with uploads.database() as db:
            seen = await db.videos.by_upload_id(upload_id)
        assert seen is not None and seen.upload_expires_at is not None
        assert seen.upload_expires_at < now  # the cleaner sees an expired upload...
        async with uploads.database() as db:  # ...then a writer on another node commits
            await db.videos.update(
                upload_id, {"upload_expires_at": uploads.next_expiry(), "status": "uploading"}
            )
            await db.commit()
        async with uploads.database() as db:
            claimed = await db.videos.claim_expired(
                upload_id, status=seen.status, offset=seen.upload_offset, now=now
            )
            await db.commit()
        return claimed, await VideoService(uploads).cleanup()

    with expired_clock(server):
        claimed, report = server.run(race())
    assert not claimed
    assert upload_id not in report.expired_ids
    write(client, user, url, 10, b"x" * 40)  # the upload lives on and finishes
    assert complete_and_read(client, user.bearer, url) == b"w" * 10 + b"x" * 40


def test_concurrent_cleanups_clean_each_expired_upload_exactly_once(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    drain(server)
    urls = [create_upload(client, user.headers, session_id, 40) for _ in range(9)]
    for url in urls[::2]:
        write(client, user, url, 0, b"c" * 7)
    ids = {upload_id_of(url) for url in urls}
    services = server.services
    other = another_node(server)

    async def race() -> list[CleanupReport]:
        return list(
            await asyncio.gather(
                VideoService(services, batch_size=2).cleanup(),
                VideoService(services, batch_size=3, concurrency=2).cleanup(),
                VideoService(other, batch_size=2).cleanup(),
                VideoService(other, batch_size=4, concurrency=1).cleanup(),
            )
        )

    with expired_clock(server):
        reports = server.run(race())

    assert sum(report.expired for report in reports) == len(ids)
    cleaned = [upload_id for report in reports for upload_id in report.expired_ids]
    assert len(cleaned) == len(set(cleaned))  # nobody cleaned an upload twice
    assert set(cleaned) == ids
    assert all(storage_of(server, upload_id) == [] for upload_id in ids)


def test_thousands_of_expired_rows_are_cleaned_in_batches(server: LiveServer) -> None:
    drain(server)
    count = 1203
    base = server.clock() - timedelta(minutes=5)
    services: Services = server.services

    async def insert() -> None:
        async with orm_session(server.settings.resolved_database_url) as db:
            db.add_all(
                VideoRow(
                    id=uuid.uuid4(),
                    user_id="bulk-user",
                    upload_id=f"bulk-{index:05d}-{secrets.token_hex(8)}",
                    storage_key=secrets.token_hex(16),
                    upload_offset=0,
                    upload_length=100,
                    upload_completed=False,
                    upload_metadata={},
                    # few distinct expiry times: pages must break ties by upload_id
                    upload_expires_at=base - timedelta(seconds=index % 7),
                    status="pending",
                    created_at=base,
                    updated_at=base,
                )
                for index in range(count)
            )
            await db.commit()

    async def still_pending() -> int:
        async with orm_session(server.settings.resolved_database_url) as db:
            result = await db.execute(
                select(func.count())
                .select_from(VideoRow)
                .where(VideoRow.user_id == "bulk-user", VideoRow.status != "expired")
            )
            return int(result.scalar_one())

    server.run(insert())
    report = server.run(
        VideoService(services, batch_size=500, concurrency=16).cleanup(), timeout=240
    )
    assert report.expired == count
    assert report.skipped == 0
    assert server.run(still_pending()) == 0
