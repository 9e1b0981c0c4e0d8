"""The upload lifecycle: create, write, inspect, finish and terminate uploads.

This is where the rules live (ownership, offsets, lengths, limits, checksums, expiry), and,
with its helpers `creation`, `writes`, `concat` and `recovery`, the only place that joins the
metadata database and the byte store. It knows nothing of HTTP: the tus and REST layers
translate requests into these calls and `ServiceError`s into answers.

`UploadService` holds what its helpers share (settings, database, store, leases, the checks of
ownership, lengths and expiry), reads uploads, terminates them, and hands the rest to the
helpers it builds: creation to `lifecycle.creation`, the write path (PATCH, the HEAD that
settles a stalled writer, finishing) to `lifecycle.writes`, which states the durability rule,
concatenation to `lifecycle.concat`, and repairs after a machine crash to `lifecycle.recovery`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from video_upload import logs, metrics
from video_upload.config import Settings
from video_upload.domain.errors import (
    ERR_FORBIDDEN,
    ERR_INVALID_DURATION,
    ERR_INVALID_LENGTH,
    ERR_SESSION_NOT_FOUND,
    ERR_STORAGE_FAILED,
    ERR_STORAGE_FULL,
    ERR_STORAGE_UNAVAILABLE,
    ERR_TOO_LARGE,
    ERR_UPLOAD_GONE,
    ERR_UPLOAD_NOT_FOUND,
    ServiceError,
)
from video_upload.domain.events import ABORTED
from video_upload.domain.records import Video
from video_upload.lifecycle.concat import Concatenator
from video_upload.lifecycle.creation import UploadCreation
from video_upload.lifecycle.events import EventRecorder
from video_upload.lifecycle.leases import WriterLeases
from video_upload.lifecycle.locks import UploadLocks
from video_upload.lifecycle.records import (
    Chunk,
    Clock,
    NewUpload,
    WriteOutcome,
    stored,
    utcnow,
)
from video_upload.lifecycle.recovery import CrashRecovery
from video_upload.lifecycle.writes import HEAD_WAIT_SECONDS, UploadWriter
from video_upload.persistence.database import Database, Transaction, TransactionScope
from video_upload.storage.base import StorageError, StorageFull, UploadStore

log = logging.getLogger(__name__)

T = TypeVar("T")

# A write moves an upload's expiry forward only once it would move by this much, or by a
# hundredth of the expiration window if that is less (the client is told the expiry that
# stands, in every answer).
EXPIRY_STEP = timedelta(minutes=1)


class UploadService:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        store: UploadStore,
        *,
        locks: UploadLocks | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.db = database
        self.store = store
        self.locks = locks or UploadLocks()
        self.clock = clock
        self.expiry_step = min(EXPIRY_STEP, timedelta(hours=settings.upload_expiration_hours) / 100)
        self.chunks = database.chunks
        self.leases = WriterLeases(
            database, clock, self.locks, lease_seconds=settings.upload_lease_seconds
        )
        self.events = EventRecorder(settings, clock)
        # told after a transaction with an event committed (the app wakes its dispatcher)
        self.events_committed: Callable[[], None] = _nothing
        self.creation = UploadCreation(self)
        self.concat = Concatenator(self)
        self.recovery = CrashRecovery(self)
        self.writer = UploadWriter(self)

    # -- helpers -------------------------------------------------------------------------

    def next_expiry(self) -> datetime:
        return self.clock() + timedelta(hours=self.settings.upload_expiration_hours)

    def is_expired(self, video: Video) -> bool:
        if video.status == "expired":
            return True
        return (
            (not video.upload_completed or video.concat == "partial")
            and video.upload_expires_at is not None
            and video.upload_expires_at <= self.clock()
        )

    def check_length(self, length: int) -> None:
        if length < 0:
            raise ERR_INVALID_LENGTH.with_message("Upload-Length must not be negative")
        if length > self.settings.max_upload_size:
            raise ERR_TOO_LARGE.with_message(
                f"file exceeds the maximum upload size of {self.settings.max_upload_size} bytes",
                max_size=self.settings.max_upload_size,
            )

    def check_declared_video(self, file_size: int, duration_seconds: float) -> None:
        """What REST init and direct uploads declare up front: a size and a duration within
        the limits."""
        settings = self.settings
        if file_size <= 0:
            raise ERR_INVALID_LENGTH.with_message("file_size must be greater than 0")
        if file_size > settings.max_upload_size:
            raise ERR_TOO_LARGE.with_message(
                f"file_size exceeds the limit of {settings.max_video_size_mb} MB",
                max_size=settings.max_upload_size,
            )
        if not 0 < duration_seconds <= settings.max_duration_seconds:
            raise ERR_INVALID_DURATION.with_message(
                f"duration_seconds must be above 0 and at most {settings.max_duration_seconds:g}",
                max_duration_seconds=settings.max_duration_seconds,
            )

    async def owned_upload(self, db: Transaction, user_id: str, upload_id: str) -> Video:
        return self.check_owned(await db.videos.by_upload_id(upload_id), user_id)

    def check_owned(self, video: Video | None, user_id: str) -> Video:
        """The upload, if it exists, belongs to `user_id` and has not expired."""
        if video is None:
            raise ServiceError(ERR_UPLOAD_NOT_FOUND)
        if video.user_id != user_id:
            raise ERR_FORBIDDEN.with_message("this upload belongs to another user")
        if self.is_expired(video):
            raise ServiceError(ERR_UPLOAD_GONE)
        return video

    async def owned_session(
        self, db: Transaction, user_id: str, session_id: str | None
    ) -> uuid.UUID:
        try:
            parsed = uuid.UUID(session_id or "")
        except ValueError:
            raise ERR_SESSION_NOT_FOUND.with_message("session_id is not a known session") from None
        session = await db.sessions.get(parsed)
        if session is None:
            raise ServiceError(ERR_SESSION_NOT_FOUND)
        if session.user_id != user_id:
            raise ERR_FORBIDDEN.with_message("this practice session belongs to another user")
        return parsed

    # -- creation ------------------------------------------------------------------------

    async def create(self, user_id: str, new: NewUpload) -> Video:
        video = await self.creation.create(user_id, new)
        if new.length == 0:  # nothing to send: complete at once
            async with self.leases.exclusive(video.upload_id):
                video = await self.writer.finish(video)
        return video

    async def claim_initialised(
        self, user_id: str, upload_id: str, length: int | None, raw_metadata: str | None = None
    ) -> Video:
        return await self.creation.claim_initialised(user_id, upload_id, length, raw_metadata)

    # -- reading -------------------------------------------------------------------------

    async def get(self, user_id: str, upload_id: str) -> Video:
        """The upload, owned by `user_id` and not expired, read with one direct statement."""
        logs.annotate(upload_id=upload_id)
        return self.check_owned(await self.chunks.read(upload_id), user_id)

    async def current(self, user_id: str, upload_id: str) -> Video:
        """The upload as a client about to resume it must see it: moved back first if its
        store lost committed bytes in a machine crash (see `lifecycle.recovery`)."""
        video = await self.get(user_id, upload_id)
        if not await self.recovery.lost_bytes(video):
            return video
        async with self.leases.exclusive(upload_id, wait_seconds=HEAD_WAIT_SECONDS) as lease:
            return await self.recovery.rewind_to_held(self.check_owned(lease.video, user_id))

    # -- writing (see lifecycle.writes) --------------------------------------------------

    async def settled(self, user_id: str, upload_id: str) -> Video:
        """What a tus HEAD answers: the upload once an older writer has been pre-empted."""
        return await self.writer.settled(user_id, upload_id)

    async def write(self, user_id: str, upload_id: str, chunk: Chunk) -> WriteOutcome:
        """Append a chunk (a tus PATCH): bytes to the store, then the offset committed."""
        return await self.writer.write(user_id, upload_id, chunk)

    async def ensure_finished(self, video: Video) -> Video:
        """Finish an upload whose bytes all arrived but whose sealing was interrupted."""
        return await self.writer.ensure_finished(video)

    # -- concatenation (see lifecycle.concat) ------------------------------------------------

    async def create_final(
        self,
        user_id: str,
        part_ids: list[str],
        raw_metadata: str | None,
        metadata: dict[str, str | None],
    ) -> Video:
        return await self.concat.create_final(user_id, part_ids, raw_metadata, metadata)

    async def refresh_final(self, video: Video) -> Video:
        return await self.concat.refresh_final(video)

    # -- termination ---------------------------------------------------------------------

    async def terminate(self, user_id: str, upload_id: str) -> None:
        """Delete the upload; a stalled request still writing to it is pre-empted, as for a
        HEAD or PATCH of its owner."""
        async with self.leases.exclusive(upload_id, preempt=True, user_id=user_id):
            async with self.database() as db:
                video = await self.owned_upload(db, user_id, upload_id)
            await self.storage_call(self.store.terminate(stored(video)))
            async with self.database() as db:
                await db.videos.remove(upload_id)
                if video.concat != "partial":
                    await self.events.record(db, ABORTED, video)
                await db.commit()
        metrics.uploads_terminated.inc()
        self.events_committed()

    # -- plumbing ------------------------------------------------------------------------

    def database(self) -> TransactionScope:
        return self.db.transaction()

    async def storage_call(self, operation: Awaitable[T]) -> T:
        """Await a store call, turning its failures into the client-facing errors."""
        try:
            return await operation
        except StorageFull as error:
            log.warning("storage full: %s", error)
            raise ERR_STORAGE_FULL.with_message(str(error)) from error
        except StorageError as error:
            log.warning("storage failure: %s", error)
            if error.retryable:
                raise ServiceError(ERR_STORAGE_UNAVAILABLE) from error
            raise ServiceError(ERR_STORAGE_FAILED) from error


def _nothing() -> None:
    return None


__all__ = ["Chunk", "Clock", "NewUpload", "UploadService", "WriteOutcome", "stored", "utcnow"]
