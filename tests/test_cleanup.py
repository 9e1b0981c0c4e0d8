"""Expired-upload cleanup and orphan collection, on every database x store combination.

Uploads are made to expire by moving the service clock past `UPLOAD_EXPIRATION_HOURS` (always
moved back afterwards); cleanups run on the server's own event loop, with its engine, store
and upload locks, the way the in-process periodic task runs them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import User, make_settings
from tests.support.live import LiveServer, expired_clock, start_server
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
from video_upload.lifecycle.periodic import PeriodicCleanup
from video_upload.lifecycle.service import UploadService
from video_upload.persistence.engine import migrate
from video_upload.persistence.models import VideoRow
from video_upload.storage.base import SidecarStore, StoredUpload

# -- helpers -----------------------------------------------------------------------------------


def run_cleanup(server: LiveServer, **options: Any) -> CleanupReport:
    return server.run(VideoService(server.services, **options).cleanup())


def drain(server: LiveServer) -> None:
    """Clean whatever earlier tests left to expire, so that counts below are exact."""
    with expired_clock(server):
        run_cleanup(server)


def upload_id_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def storage_of(server: LiveServer, key: str) -> list[str]:
    """What the store still holds for `key`: files, S3 objects or pending multipart uploads."""
    settings = server.settings
    if settings.storage_backend == "s3":
        try:
            from tests.support.s3server import leftover_objects, pending_multipart_uploads
        except ImportError:  # pragma: no cover - S3 support not installed
            pytest.skip("S3 test helpers are not available")
        endpoint, bucket = settings.s3_endpoint_url, settings.s3_bucket_name
        prefix = settings.s3_key_prefix + key
        return leftover_objects(endpoint, bucket, prefix) + pending_multipart_uploads(
            endpoint, bucket, prefix
        )
    path = settings.local_storage_path / key
    sidecars = settings.local_storage_path / f"{key}.sidecar"
    return [str(found) for found in (path, sidecars) if found.exists()]


def row(server: LiveServer, upload_id: str) -> Video | None:
    async def read() -> Video | None:
        async with server.services.uploads.database() as db:
            return await db.videos.by_upload_id(upload_id)

    return server.run(read())


def write(client: httpx.Client, user: User, url: str, offset: int, data: bytes) -> None:
    response = client.patch(url, headers=patch_headers(user.headers, offset), content=data)
    assert response.status_code == 204, response.text


def another_node(server: LiveServer) -> UploadService:
    """The same database and store, but locks of its own: what a second process would have."""
    services = server.services
    return UploadService(
        server.settings, services.database, services.store, locks=UploadLocks(), clock=server.clock
    )


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


# -- the periodic task and the command -------------------------------------------------------------


@pytest.mark.any_backend
def test_periodic_cleanup_is_off_by_default(server: LiveServer) -> None:
    assert server.settings.cleanup_interval_minutes == 0
    assert server.app.state.cleanup is None


async def test_periodic_cleanup_survives_a_failing_round_and_stops_cleanly() -> None:
    calls = 0

    async def flaky() -> CleanupReport:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return CleanupReport(expired=calls)

    periodic = PeriodicCleanup(flaky, interval_seconds=0)
    periodic.start()
    try:
        await periodic.wait_rounds(3)
        assert periodic.running
    finally:
        await periodic.stop()
    assert not periodic.running
    assert periodic.failures == 1
    assert periodic.last_report is not None and periodic.last_report.expired >= 3


def test_app_runs_the_cleanup_periodically_when_an_interval_is_set(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = make_settings(request, tmp_path, "sqlite-local", cleanup_interval_minutes=0.0005)
    migrate(settings.resolved_database_url)
    live = start_server("periodic", settings)
    try:
        periodic = live.app.state.cleanup
        assert isinstance(periodic, PeriodicCleanup) and periodic.running
        user = User("periodic-user", live.token("periodic-user"))
        with httpx.Client(base_url=live.base_url, timeout=60) as client:
            made = client.post("/api/v1/sessions", json={"name": "x"}, headers=user.bearer)
            url = create_upload(client, user.headers, made.json()["id"], 20)
            write(client, user, url, 0, b"p" * 5)
            with expired_clock(live):
                live.run(periodic.wait_rounds(2))  # at least one whole round after the move
            assert client.head(url, headers=user.headers).status_code == 410
        assert storage_of(live, upload_id_of(url)) == []
    finally:
        live.stop()
    assert not periodic.running  # cancelled with the app


def cli_command() -> list[str]:
    """`video-upload` as installed in this environment (what `uv run video-upload` runs)."""
    script = shutil.which("video-upload", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "video_upload"]


def run_cleanup_command(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    settings_prefixes = ("JWT_", "DATA", "STORAGE", "LOCAL_", "S3_", "AWS_", "UPLOAD_", "CLEANUP_")
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(settings_prefixes)
    }
    environment.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path / "data"),
        LOCAL_STORAGE_PATH=str(tmp_path / "uploads"),
        STORAGE_BACKEND="local",
    )
    return subprocess.run(
        [*cli_command(), "cleanup"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cleanup_command_cleans_once_and_prints_the_counts(tmp_path: Path) -> None:
    database = tmp_path / "data" / "video-upload.db"
    database.parent.mkdir(parents=True)
    migrate(f"sqlite+aiosqlite:///{database}")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    now = datetime.now(UTC)
    two_days_ago = (now - timedelta(days=2)).timestamp()

    def video(upload_id: str, *, expires: datetime | None, completed: bool = False) -> VideoRow:
        (uploads / upload_id).write_bytes(b"bytes of " + upload_id.encode())
        os.utime(uploads / upload_id, (two_days_ago, two_days_ago))
        return VideoRow(
            id=uuid.uuid4(),
            user_id="cli-user",
            upload_id=upload_id,
            storage_key=upload_id,
            upload_offset=100 if completed else 3,
            upload_length=100,
            upload_completed=completed,
            upload_metadata={},
            upload_expires_at=expires,
            status="uploaded" if completed else "uploading",
            created_at=now - timedelta(days=2),
            updated_at=now - timedelta(days=2),
        )

    rows = [
        video("expired-one", expires=now - timedelta(hours=1)),
        video("expired-two", expires=now - timedelta(days=1)),
        video("still-active", expires=now + timedelta(hours=3)),
        video("finished", expires=None, completed=True),
    ]
    engine = create_sync_engine(f"sqlite:///{database}")
    with Session(engine) as db:
        db.add_all(rows)
        db.commit()
    (uploads / "orphan").write_bytes(b"nobody knows me")
    os.utime(uploads / "orphan", (two_days_ago, two_days_ago))
    (uploads / "fresh-orphan").write_bytes(b"maybe a row is on its way")

    result = run_cleanup_command(tmp_path, f"sqlite+aiosqlite:///{database}")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cleaned 2 expired uploads, removed 1 orphan"
    remaining = sorted(path.name for path in uploads.iterdir())
    assert remaining == ["finished", "fresh-orphan", "still-active"]
    with Session(engine) as db:
        statuses = {
            upload_id: status
            for upload_id, status in db.execute(select(VideoRow.upload_id, VideoRow.status)).all()
        }
    engine.dispose()
    assert statuses == {
        "expired-one": "expired",
        "expired-two": "expired",
        "still-active": "uploading",
        "finished": "uploaded",
    }
    again = run_cleanup_command(tmp_path, f"sqlite+aiosqlite:///{database}")
    assert again.stdout.strip() == "cleaned 0 expired uploads, removed 0 orphans"


def test_cleanup_command_reports_an_unusable_database_and_fails(tmp_path: Path) -> None:
    result = run_cleanup_command(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}")
    assert result.returncode == 1
    assert "cleanup failed" in result.stderr
    assert result.stdout == ""
