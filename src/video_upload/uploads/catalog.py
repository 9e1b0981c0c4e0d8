"""Practice sessions and finished videos: what the REST API reads and finalises."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from video_upload.db.models import PracticeSession, Video
from video_upload.db.repository import SessionRepository, VideoRepository
from video_upload.errors import (
    ERR_FORBIDDEN,
    ERR_INVALID_CONCAT,
    ERR_UPLOAD_INCOMPLETE,
    ERR_VIDEO_NOT_FOUND,
    ServiceError,
)
from video_upload.storage.base import ByteRange
from video_upload.uploads.service import UploadService, stored


@dataclass(frozen=True)
class Content:
    video: Video
    byte_range: ByteRange
    chunks: AsyncIterator[bytes]


class VideoCatalog:
    def __init__(self, uploads: UploadService) -> None:
        self.uploads = uploads

    async def create_session(self, user_id: str, name: str) -> PracticeSession:
        session = PracticeSession(
            id=uuid.uuid4(), user_id=user_id, name=name, created_at=self.uploads.clock()
        )
        async with self.uploads.database() as db:
            await SessionRepository(db).add(session)
            await db.commit()
        return session

    async def session(self, user_id: str, session_id: uuid.UUID) -> PracticeSession:
        async with self.uploads.database() as db:
            await self.uploads.owned_session(db, user_id, str(session_id))
            session = await SessionRepository(db).get(session_id)
        assert session is not None
        return session

    async def session_videos(self, user_id: str, session_id: uuid.UUID) -> list[Video]:
        async with self.uploads.database() as db:
            await self.uploads.owned_session(db, user_id, str(session_id))
            return await VideoRepository(db).in_session(session_id)

    async def video(self, user_id: str, video_id: uuid.UUID) -> Video:
        async with self.uploads.database() as db:
            video = await VideoRepository(db).by_id(video_id)
        if video is None or video.concat == "partial":
            raise ServiceError(ERR_VIDEO_NOT_FOUND)
        if video.user_id != user_id:
            raise ERR_FORBIDDEN.with_message("this video belongs to another user")
        return video

    async def complete(self, user_id: str, upload_id: str) -> Video:
        """Finalise an upload whose every byte has arrived; repeating it is harmless."""
        video = await self.uploads.get(user_id, upload_id)
        if video.concat == "partial":
            raise ERR_INVALID_CONCAT.with_message(
                "a partial upload is completed by its final upload"
            )
        video = await self.uploads.refresh_final(video)
        video = await self.uploads.ensure_finished(video)
        if not video.upload_completed:
            raise ERR_UPLOAD_INCOMPLETE.with_message(
                f"upload has {video.upload_offset} of {video.upload_length} bytes",
                offset=video.upload_offset,
                size=video.upload_length,
            )
        if video.status != "completed":
            now = self.uploads.clock()
            async with self.uploads.database() as db:
                await VideoRepository(db).update(
                    upload_id, {"status": "completed", "completed_at": now, "updated_at": now}
                )
                await db.commit()
            video.status, video.completed_at, video.updated_at = "completed", now, now
        return video

    async def content(
        self, user_id: str, video_id: uuid.UUID, byte_range: ByteRange | None
    ) -> Content:
        video = await self.video(user_id, video_id)
        if not video.upload_completed or video.status not in {"uploaded", "completed"}:
            raise ERR_VIDEO_NOT_FOUND.with_message("video has no content yet")
        size = video.upload_offset
        chosen = byte_range or ByteRange(0, size - 1)
        return Content(video, chosen, self.uploads.store.read(stored(video), chosen))
