"""Metadata access through the ORM: every SQL statement the service runs lives here, but for
the per-chunk ones (`persistence.chunks`) and the lease upkeep (`persistence.leases`). Rows go
in and come out as `domain.records` dataclasses.

Writes that move an upload are conditional on the offset they expect (`UPDATE ... WHERE
upload_offset = :expected`), so two writers on different processes or nodes can never both
commit at the same offset: the loser sees `False` and discards its bytes.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from video_upload.domain.records import PracticeSession, UserUsage
from video_upload.domain.records import Video as VideoRecord
from video_upload.persistence.models import PracticeSessionRow
from video_upload.persistence.models import VideoRow as Video
from video_upload.persistence.records import session_of, session_row, video_of, video_row


def expirable() -> ColumnElement[bool]:
    """Uploads that can expire: unfinished ones, and partial uploads (finished or not), which
    only exist to become part of a final upload."""
    return or_(Video.upload_completed.is_(False), Video.concat == "partial")


# Built once: HEAD, REST status and most other requests read an upload by its id.
_BY_UPLOAD_ID = select(Video).where(Video.upload_id == bindparam("target_upload_id"))


class SessionRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, session: PracticeSession) -> PracticeSession:
        self.db.add(session_row(session))
        await self.db.flush()
        return session

    async def of_user(self, user_id: str, *, offset: int, limit: int) -> list[PracticeSession]:
        """The user's sessions, oldest first: `limit` of them from `offset` on."""
        result = await self.db.execute(
            select(PracticeSessionRow)
            .where(PracticeSessionRow.user_id == user_id)
            .order_by(PracticeSessionRow.created_at, PracticeSessionRow.id)
            .offset(offset)
            .limit(limit)
        )
        return [session_of(row) for row in result.scalars()]

    async def get(self, session_id: uuid.UUID) -> PracticeSession | None:
        row = await self.db.get(PracticeSessionRow, session_id)
        return None if row is None else session_of(row)


class VideoRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, video: VideoRecord) -> VideoRecord:
        self.db.add(video_row(video))
        await self.db.flush()
        return video

    async def by_upload_id(self, upload_id: str) -> VideoRecord | None:
        result = await self.db.execute(_BY_UPLOAD_ID, {"target_upload_id": upload_id})
        row = result.scalar_one_or_none()
        return None if row is None else video_of(row)

    async def by_upload_ids(self, upload_ids: Sequence[str]) -> list[VideoRecord]:
        result = await self.db.execute(select(Video).where(Video.upload_id.in_(upload_ids)))
        return [video_of(row) for row in result.scalars()]

    async def by_id(self, video_id: uuid.UUID) -> VideoRecord | None:
        row = await self.db.get(Video, video_id)
        return None if row is None else video_of(row)

    async def in_session(
        self, session_id: uuid.UUID, *, offset: int = 0, limit: int | None = None
    ) -> list[VideoRecord]:
        """The session's videos, oldest first: `limit` of them from `offset` on."""
        result = await self.db.execute(
            select(Video)
            .where(Video.session_id == session_id, Video.concat.is_distinct_from("partial"))
            .order_by(Video.created_at, Video.id)
            .offset(offset)
            .limit(limit)
        )
        return [video_of(row) for row in result.scalars()]

    async def unfinished_finals(self, user_id: str) -> list[VideoRecord]:
        result = await self.db.execute(
            select(Video).where(
                Video.user_id == user_id,
                Video.concat == "final",
                Video.upload_completed.is_(False),
            )
        )
        return [video_of(row) for row in result.scalars()]

    async def rewind(
        self, upload_id: str, *, from_offset: int, to_offset: int, now: datetime
    ) -> bool:
        """Move an unfinished upload back to `to_offset`, if it still stands at `from_offset`."""
        result = await self.db.execute(
            update(Video)
            .where(
                Video.upload_id == upload_id,
                Video.upload_offset == from_offset,
                Video.upload_completed.is_(False),
            )
            .values(upload_offset=to_offset, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def update(self, upload_id: str, values: dict[str, Any]) -> None:
        await self.db.execute(
            update(Video)
            .where(Video.upload_id == upload_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def settle(self, upload_id: str, values: dict[str, Any], unless: Sequence[str]) -> bool:
        """Set `values` unless the video's status is already one of `unless` (a final
        verdict); whether this call made the change."""
        result = await self.db.execute(
            update(Video)
            .where(Video.upload_id == upload_id, Video.status.not_in(list(unless)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def lock_user(self, user_id: str) -> None:
        """Until this transaction ends, make other transactions that lock the same user wait
        (PostgreSQL's advisory lock; SQLite's writers take turns anyway)."""
        if self.db.get_bind().dialect.name != "postgresql":
            return
        key = int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:8], "big", signed=True)
        await self.db.execute(select(func.pg_advisory_xact_lock(key)))

    async def usage(self, user_id: str, since: datetime) -> UserUsage:
        """What `user_id` holds now, and how many uploads it started after `since`."""
        unfinished = and_(
            Video.user_id == user_id,
            Video.upload_completed.is_(False),
            Video.status != "expired",
        )
        totals = (
            await self.db.execute(
                select(
                    func.count(),
                    func.coalesce(
                        func.sum(func.coalesce(Video.upload_length, Video.upload_offset)), 0
                    ),
                ).where(unfinished)
            )
        ).one()
        open_count, open_bytes = int(totals[0] or 0), int(totals[1] or 0)
        stored = (
            await self.db.execute(
                select(func.coalesce(func.sum(Video.upload_length), 0)).where(
                    Video.user_id == user_id,
                    Video.upload_completed.is_(True),
                    Video.status.not_in(["rejected", "expired"]),
                    Video.concat.is_distinct_from("partial"),
                )
            )
        ).scalar_one()
        recent = (
            await self.db.execute(
                select(func.count()).where(Video.user_id == user_id, Video.created_at > since)
            )
        ).scalar_one()
        return UserUsage(
            unfinished_uploads=open_count,
            unfinished_bytes=open_bytes,
            stored_bytes=int(stored or 0),
            created_last_minute=int(recent),
        )

    async def remove(self, upload_id: str) -> None:
        await self.db.execute(delete(Video).where(Video.upload_id == upload_id))

    async def expired(self, now: datetime, limit: int) -> list[VideoRecord]:
        result = await self.db.execute(
            select(Video)
            .where(
                Video.upload_completed.is_(False),
                Video.status != "expired",
                Video.upload_expires_at < now,
            )
            .order_by(Video.upload_expires_at)
            .limit(limit)
        )
        return [video_of(row) for row in result.scalars()]

    async def known_storage_keys(self, keys: Sequence[str]) -> set[str]:
        result = await self.db.execute(select(Video.storage_key).where(Video.storage_key.in_(keys)))
        return set(result.scalars())

    # -- expiry cleanup (see maintenance.cleanup) ------------------------------------------

    async def expired_page(
        self, now: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[VideoRecord]:
        """Incomplete uploads that expired before `now` and are not marked yet, oldest first.

        Keyset pagination: `after` is the `(upload_expires_at, upload_id)` of the last row of the
        previous page, so rows skipped on one page (a writer holds them) are not read again.
        """
        query = select(Video).where(
            expirable(),
            Video.status != "expired",
            Video.upload_expires_at < now,
        )
        if after is not None:
            expires_at, upload_id = after
            query = query.where(
                or_(
                    Video.upload_expires_at > expires_at,
                    and_(Video.upload_expires_at == expires_at, Video.upload_id > upload_id),
                )
            )
        result = await self.db.execute(
            query.order_by(Video.upload_expires_at, Video.upload_id).limit(limit)
        )
        return [video_of(row) for row in result.scalars()]

    async def claim_expired(
        self, upload_id: str, *, status: str, offset: int, now: datetime
    ) -> bool:
        """Mark an expired upload `expired` if it still stands where the cleaner saw it.

        True for exactly one of several concurrent cleaners. False when the row moved on: another
        cleaner claimed it, a writer committed (offset, status or expiry changed), it was
        completed, or a writer on some node holds its lease right now.
        """
        result = await self.db.execute(
            update(Video)
            .where(
                Video.upload_id == upload_id,
                Video.status == status,
                Video.upload_offset == offset,
                expirable(),
                Video.upload_expires_at < now,
                or_(Video.lock_owner.is_(None), Video.lock_expires_at < now),
            )
            .values(status="expired", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def live_storage_keys(self, keys: Sequence[str]) -> set[str]:
        """The subset of `keys` that a row still needs (any row not marked `expired`)."""
        result = await self.db.execute(
            select(Video.storage_key).where(Video.storage_key.in_(keys), Video.status != "expired")
        )
        return set(result.scalars())
