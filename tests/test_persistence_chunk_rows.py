"""The direct statements and the ORM agree on every column, on SQLite and PostgreSQL: a row the ORM
wrote reads back identically through the direct statements, and what the direct statements write
is stored exactly as the ORM stores the same values (UUIDs, UTC timestamps, JSON, booleans).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from tests.support.databases import database as database
from tests.support.databases import database_url as database_url
from tests.support.rows import orm_session
from video_upload.domain.records import VIDEO_FIELDS, PracticeSession, Progress, Video
from video_upload.persistence.database import Database
from video_upload.persistence.engine import migrate_async
from video_upload.persistence.models import VideoRow
from video_upload.persistence.sqlite_direct import EngineDriver

# a microsecond past the second, and a zone that is not UTC: both must survive the trip
CREATED = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
ELSEWHERE = timezone(timedelta(hours=5, minutes=30))
STATE: dict[str, Any] = {
    "parts": [{"n": 1, "etag": '"abc"'}],
    "ratio": 0.5,
    "name": "Étude №3 🎻",
    "ok": True,
}


def every_column_set(session_id: uuid.UUID) -> Video:
    """A video with every column away from its default."""
    return Video(
        id=uuid.uuid4(),
        user_id="user-rows",
        session_id=session_id,
        upload_id=f"upload-{uuid.uuid4().hex}",
        storage_key="uploads/rows.mp4",
        created_at=CREATED,
        updated_at=CREATED.astimezone(ELSEWHERE),
        upload_offset=5 * 2**30,  # past 32 bits
        upload_length=6 * 2**30,
        upload_completed=True,
        upload_metadata=STATE,
        upload_expires_at=CREATED + timedelta(hours=24),
        tus_metadata="filename dGFrZTEubXA0",
        concat="partial",
        concat_parts=["a", "b"],
        filename="Étude.mp4",
        content_type="video/mp4",
        declared_duration_seconds=61.5,
        status="uploading",
        completed_at=CREATED + timedelta(minutes=1),
        lock_owner="node-a:1:writer",
        lock_expires_at=CREATED - timedelta(seconds=1),
        lock_stop_requested=True,
        duration_seconds=60.25,
        container_format="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec="h264",
        audio_codec="aac",
        width=1920,
        height=1080,
        frame_rate=29.97,
        duration_mismatch=False,
        has_thumbnail=True,
        rejection_code="too_long",
        rejection_reason="longer than 5 minutes",
    )


async def add_with_the_orm(database: Database, video: Video | None = None) -> Video:
    session = PracticeSession(uuid.uuid4(), "user-rows", "rows", CREATED)
    video = video or every_column_set(session.id)
    video.session_id = session.id
    async with database.transaction() as db:
        await db.sessions.add(session)
        await db.videos.add(video)
        await db.commit()
    return video


async def read_with_the_orm(database: Database, upload_id: str) -> Video:
    async with database.transaction() as db:
        video = await db.videos.by_upload_id(upload_id)
    assert video is not None
    return video


def types_of(video: Video) -> list[type]:
    return [type(getattr(video, name)) for name in VIDEO_FIELDS]


async def stored(database_url: str, upload_id: str) -> dict[str, Any]:
    """Each column's stored value as the database itself shows it as text."""
    columns = ", ".join(f"CAST({name} AS TEXT) AS {name}" for name in VIDEO_FIELDS)
    async with orm_session(database_url) as db:
        result = await db.execute(
            text(f"SELECT {columns} FROM videos WHERE upload_id = :upload_id"),
            {"upload_id": upload_id},
        )
        return dict(result.mappings().one())


async def test_a_row_the_orm_wrote_reads_back_identically_through_the_direct_statements(
    database: Database,
) -> None:
    video = await add_with_the_orm(database)
    through_orm = await read_with_the_orm(database, video.upload_id)
    direct = await database.chunks.read(video.upload_id)
    assert direct == through_orm
    assert direct is not None and types_of(direct) == types_of(through_orm)
    assert direct.updated_at == video.updated_at and direct.updated_at.tzinfo == UTC
    assert direct.upload_metadata == STATE


async def test_taking_a_lease_returns_the_row_as_the_orm_reads_it(database: Database) -> None:
    video = await add_with_the_orm(database)
    now = CREATED.astimezone(ELSEWHERE)  # the lease above ran out a second before
    taken = await database.chunks.take_lease(
        video.upload_id, "node-b:2:writer", now, now + timedelta(seconds=10)
    )
    through_orm = await read_with_the_orm(database, video.upload_id)
    assert taken == through_orm
    assert taken is not None and types_of(taken) == types_of(through_orm)
    assert taken.lock_owner == "node-b:2:writer"
    assert taken.lock_expires_at == CREATED + timedelta(seconds=10)
    assert taken.lock_stop_requested is False


async def test_a_lease_runs_out_to_the_microsecond_whoever_wrote_it(database: Database) -> None:
    video = await add_with_the_orm(database)  # lock_expires_at = CREATED - 1 s, by the ORM
    expiry = CREATED - timedelta(seconds=1)
    until = CREATED + timedelta(seconds=10)
    chunks = database.chunks
    at_expiry = expiry.astimezone(ELSEWHERE)
    assert await chunks.take_lease(video.upload_id, "b", at_expiry, until) is None
    after = at_expiry + timedelta(microseconds=1)
    assert await chunks.take_lease(video.upload_id, "b", after, until) is not None
    # now written by the direct statement: the same comparison holds for it
    just_before = until - timedelta(microseconds=1)
    assert await chunks.take_lease(video.upload_id, "c", just_before, until) is None
    assert await chunks.take_lease(video.upload_id, "c", until + timedelta(microseconds=1), until)


async def test_the_direct_statements_store_values_exactly_as_the_orm_does(
    database: Database, database_url: str
) -> None:
    by_orm = await add_with_the_orm(database)
    by_direct = await add_with_the_orm(database)
    owner, now = "node-a:1:writer", CREATED.astimezone(ELSEWHERE) + timedelta(hours=1)
    until, expires = now + timedelta(seconds=10), now + timedelta(hours=24)
    new_state = {**STATE, "parts": [*STATE["parts"], {"n": 2, "etag": "d"}]}

    # the direct statements: take the lease, commit an offset moving the expiry, keep the lease
    assert await database.chunks.take_lease(by_direct.upload_id, owner, now, until)
    progress = Progress(by_direct.upload_offset + 10, new_state, None, expires, now)
    assert await database.chunks.advance(
        by_direct.upload_id,
        expected_offset=by_direct.upload_offset,
        lease_owner=owner,
        progress=progress,
        release_lease=False,
    )
    # the ORM: the same values, through the column types
    async with orm_session(database_url) as db:
        await db.execute(
            update(VideoRow)
            .where(VideoRow.upload_id == by_orm.upload_id)
            .values(
                lock_owner=owner,
                lock_expires_at=until,
                lock_stop_requested=False,
                upload_offset=by_orm.upload_offset + 10,
                upload_metadata=new_state,
                upload_length=None,
                status="uploading",
                updated_at=now,
                upload_expires_at=expires,
            )
        )
        await db.commit()
    assert await same_but_ids(database_url, by_orm, by_direct)

    # giving the lease back, then sealing the upload
    assert await database.chunks.release(by_direct.upload_id, owner)
    assert await database.chunks.finish(
        by_direct.upload_id, state={"done": True}, expires_at=None, at=now
    )
    async with orm_session(database_url) as db:
        await db.execute(
            update(VideoRow)
            .where(VideoRow.upload_id == by_orm.upload_id)
            .values(
                lock_owner=None,
                lock_expires_at=None,
                lock_stop_requested=False,
                upload_metadata={"done": True},
                upload_completed=True,
                upload_expires_at=None,
                status="uploaded",
                updated_at=now,
            )
        )
        await db.commit()
    assert await same_but_ids(database_url, by_orm, by_direct)
    sealed = await read_with_the_orm(database, by_direct.upload_id)
    assert (sealed.upload_completed, sealed.status, sealed.upload_expires_at) == (
        True,
        "uploaded",
        None,
    )
    assert sealed.upload_metadata == {"done": True}
    assert sealed.updated_at == now and sealed.updated_at.tzinfo == UTC


async def same_but_ids(database_url: str, first: Video, second: Video) -> bool:
    """Whether two rows store the same text in every column but their identities."""
    ignored = {"id", "upload_id", "session_id"}
    one = await stored(database_url, first.upload_id)
    other = await stored(database_url, second.upload_id)
    assert {k: v for k, v in one.items() if k not in ignored} == {
        k: v for k, v in other.items() if k not in ignored
    }
    return True


async def test_identities_are_stored_as_the_orm_stores_them(
    database: Database, database_url: str
) -> None:
    video = await add_with_the_orm(database)
    raw = await stored(database_url, video.upload_id)
    if database_url.startswith("sqlite"):
        assert raw["id"] == video.id.hex  # 32 hex digits, no dashes
        assert raw["created_at"] == "2026-03-01 09:30:15.123456"  # naive UTC text
        assert raw["upload_completed"] == "1"
    else:
        assert raw["id"] == str(video.id)
        assert raw["upload_completed"] == "true"
    direct = await database.chunks.read(video.upload_id)
    assert direct is not None and direct.id == video.id and direct.session_id == video.session_id


async def test_a_naive_datetime_is_refused_and_nothing_changes(database: Database) -> None:
    video = await add_with_the_orm(database)
    naive = datetime(2026, 3, 1, 12, 0, 0)
    with pytest.raises(ValueError, match="naive"):
        await database.chunks.take_lease(video.upload_id, "b", naive, naive)
    assert await read_with_the_orm(database, video.upload_id) == video_as_stored(video)


def video_as_stored(video: Video) -> Video:
    """`video` as any read gives it back: its timestamps in UTC."""
    values = {name: getattr(video, name) for name in VIDEO_FIELDS}
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = value.astimezone(UTC)
    return Video(**values)


async def test_an_unknown_upload_is_none_or_false_everywhere(database: Database) -> None:
    chunks, now = database.chunks, CREATED
    progress = Progress(1, {}, None, None, now)
    assert await chunks.read("no-such-upload") is None
    assert await chunks.take_lease("no-such-upload", "a", now, now) is None
    assert not await chunks.advance(
        "no-such-upload", expected_offset=0, lease_owner="a", progress=progress, release_lease=True
    )
    assert not await chunks.release("no-such-upload", "a")
    assert not await chunks.finish("no-such-upload", state={}, expires_at=None, at=now)


async def test_a_sqlite_uri_runs_them_on_the_main_engines_connection(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///file:{tmp_path / 'uri.db'}?uri=true"  # not a plain file name
    await migrate_async(url)
    database = Database.open(url, 10)
    try:
        assert isinstance(database.chunks.driver, EngineDriver)
        video = await add_with_the_orm(database)
        direct = await database.chunks.read(video.upload_id)
        assert direct == await read_with_the_orm(database, video.upload_id)
        now = CREATED + timedelta(hours=1)
        assert await database.chunks.take_lease(video.upload_id, "b", now, now)
        assert (await read_with_the_orm(database, video.upload_id)).lock_owner == "b"
    finally:
        await database.close()
