"""The upload lifecycle: create, write, inspect, finish and terminate uploads.

This is where the rules live (ownership, offsets, lengths, limits, checksums, expiry), and,
with its helpers `creation`, `concat` and `recovery`, the only place that joins the metadata
database and the byte store. It knows nothing of HTTP: the tus and REST layers translate
requests into these calls and `ServiceError`s into answers.

Durability rule: bytes go to the store first and the offset is committed after, with a
conditional update on the offset the write started from. The database therefore never claims
bytes the store does not hold (short of a machine crash before they were flushed, which
`lifecycle.recovery` repairs), and of two racing writers only one can commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from video_upload import logs, metrics
from video_upload.config import Settings
from video_upload.domain.errors import (
    ERR_CHECKSUM_MISMATCH,
    ERR_EXCEEDS_LENGTH,
    ERR_FINAL_UPLOAD_PATCH,
    ERR_FORBIDDEN,
    ERR_INVALID_DURATION,
    ERR_INVALID_LENGTH,
    ERR_OFFSET_MISMATCH,
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
from video_upload.domain.records import Progress, Video
from video_upload.lifecycle.concat import Concatenator
from video_upload.lifecycle.creation import UploadCreation
from video_upload.lifecycle.events import EventRecorder
from video_upload.lifecycle.leases import Lease, WriterLeases
from video_upload.lifecycle.locks import UploadLocks
from video_upload.lifecycle.quotas import check_quota, limits_enabled
from video_upload.lifecycle.records import (
    Chunk,
    Clock,
    NewUpload,
    WriteOutcome,
    stored,
    utcnow,
)
from video_upload.lifecycle.recovery import CrashRecovery
from video_upload.lifecycle.streams import GuardedBody
from video_upload.persistence.database import Database, Transaction, TransactionScope
from video_upload.storage.base import (
    StorageError,
    StorageFull,
    StoredUpload,
    UploadStore,
    WriteResult,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a HEAD waits for an in-flight PATCH to settle before answering with the committed
# offset anyway (HEAD never fails because someone is writing).
HEAD_WAIT_SECONDS = 3.0

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

    # -- helpers -------------------------------------------------------------------------

    def next_expiry(self) -> datetime:
        return self.clock() + timedelta(hours=self.settings.upload_expiration_hours)

    def _moved_expiry(self, video: Video) -> datetime | None:
        """The expiry a write gives the upload, or None to keep its own: it moves in steps of at
        least `expiry_step`, so most PATCHes leave the expiry and its index untouched."""
        expires_at = self.next_expiry()
        current = video.upload_expires_at
        if current is not None and expires_at - current < self.expiry_step:
            return None
        return expires_at

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
                video = await self._finish(video)
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

    # -- writing -------------------------------------------------------------------------

    async def settled(self, user_id: str, upload_id: str) -> Video:
        """The upload once any older request writing to it has been pre-empted and has saved.

        This is what a tus HEAD answers: a client asks where it stands when it is about to
        resume, so whatever its previous (stalled or dropped) PATCH received counts.
        """
        video = await self.get(user_id, upload_id)
        if not self.leases.is_busy(video) and not await self.recovery.lost_bytes(video):
            return video
        try:
            async with self.leases.exclusive(
                upload_id, preempt=True, wait_seconds=HEAD_WAIT_SECONDS
            ) as lease:
                return await self.recovery.rewind_to_held(self.check_owned(lease.video, user_id))
        except ServiceError as error:
            if error.kind.status != 423:
                raise
            return video  # a live writer is still receiving: report the committed offset

    async def write(self, user_id: str, upload_id: str, chunk: Chunk) -> WriteOutcome:
        """Append a chunk: two statements on the common path (take the lease, which returns
        the row; commit the offset, which gives the lease back)."""
        if self.locks.is_held(upload_id):  # a writer here may be pre-empted: owners only
            await self.get(user_id, upload_id)
        async with self.leases.exclusive(upload_id, preempt=True, user_id=user_id) as lease:
            video = await self.recovery.rewind_to_held(self.check_owned(lease.video, user_id))
            if video.concat == "final":
                raise ServiceError(ERR_FINAL_UPLOAD_PATCH)
            length = self._settle_length(video, chunk.declared_length)
            if video.upload_length is None and length is not None and limits_enabled(self.settings):
                # a deferred length counted as the bytes received so far: what it adds now
                # must fit the user's byte limits as a declared one would have at creation
                async with self.database() as db:
                    await check_quota(
                        db,
                        self.settings,
                        video.user_id,
                        length - video.upload_offset,
                        self.clock(),
                        creating=False,
                    )
            if chunk.offset != video.upload_offset:
                raise ERR_OFFSET_MISMATCH.with_headers(
                    **{"Upload-Offset": str(video.upload_offset)}
                )
            limit = (length if length is not None else self.settings.max_upload_size) - chunk.offset
            if chunk.content_length is not None and chunk.content_length > limit:
                raise ERR_EXCEEDS_LENGTH.with_message(
                    f"the body of {chunk.content_length} bytes goes past the upload's length"
                )
            body = GuardedBody(
                chunk.body,
                limit=limit,
                checksum=chunk.checksum,
                holding=self.locks.holding(upload_id),
            )
            committed = stored(video, length)
            result = await self.storage_call(self.store.write(committed, body.chunks()))
            if body.overflowed:
                await self._discard(committed, result)
                raise ServiceError(ERR_EXCEEDS_LENGTH)
            if chunk.checksum is not None and (body.disconnected or not body.checksum_matches):
                await self._discard(committed, result)
                if body.disconnected:
                    return WriteOutcome(video, disconnected=True)
                raise ServiceError(ERR_CHECKSUM_MISMATCH)
            video = await self._commit_write(video, committed, result, length, lease)
            if length is not None and video.upload_offset == length:
                video = await self._finish(video)
        if video.concat == "partial" and video.upload_completed:
            await self.concat.finals_waiting_for(video)
        return WriteOutcome(video, disconnected=body.disconnected)

    def _settle_length(self, video: Video, declared: int | None) -> int | None:
        if declared is None:
            return video.upload_length
        if video.upload_length is None:
            self.check_length(declared)
            if declared < video.upload_offset:
                raise ERR_INVALID_LENGTH.with_message("Upload-Length is below the current offset")
            return declared
        if declared != video.upload_length:
            raise ERR_INVALID_LENGTH.with_message("Upload-Length cannot be changed once set")
        return declared

    async def _commit_write(
        self,
        video: Video,
        committed: StoredUpload,
        result: WriteResult,
        length: int | None,
        lease: Lease,
    ) -> Video:
        progress = Progress(
            offset=result.offset,
            state=result.state,
            length=length,
            expires_at=self._moved_expiry(video),
            at=self.clock(),
        )
        finishing = length is not None and result.offset == length
        try:
            advanced = await self.chunks.advance(
                video.upload_id,
                expected_offset=committed.offset,
                lease_owner=lease.owner,
                progress=progress,
                # nothing more to do under the lease unless finishing: give it back now
                release_lease=not finishing,
            )
        except Exception:  # a failed commit: the bytes written for it must go too
            await self._discard(committed, result)
            raise
        if not advanced:
            await self._discard(committed, result)
            raise ERR_OFFSET_MISMATCH.with_message("another request wrote to this upload first")
        lease.released = not finishing
        metrics.bytes_received.inc(result.offset - committed.offset)
        video.update(_advanced(progress, lease_released=lease.released))
        return video

    async def _finish(self, video: Video) -> Video:
        """Seal an upload whose every byte has arrived. Safe to repeat."""
        if video.upload_completed:
            return video
        state = await self.storage_call(self.store.finish(stored(video)))
        now = self.clock()
        # a finished partial upload still expires unless a final upload consumes it
        expires_at = self.next_expiry() if video.concat == "partial" else None
        await self.chunks.finish(video.upload_id, state=state, expires_at=expires_at, at=now)
        values: dict[str, Any] = {
            "upload_metadata": state,
            "upload_completed": True,
            "upload_expires_at": expires_at,
            "status": "uploaded",
            "updated_at": now,
        }
        video.update(values)
        metrics.uploads_finished.inc()
        return video

    async def ensure_finished(self, video: Video) -> Video:
        """Finish an upload whose bytes all arrived but whose sealing was interrupted."""
        if video.upload_completed or video.upload_length is None:
            return video
        if video.upload_offset != video.upload_length:
            return video
        async with self.leases.exclusive(video.upload_id):
            video = await self.recovery.rewind_to_held(video)
            if video.upload_offset != video.upload_length:
                return video
            return await self._finish(video)

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

    async def _discard(self, committed: StoredUpload, result: WriteResult) -> None:
        try:
            await self.store.discard(committed, result)
        except StorageError:
            log.warning("could not discard an abandoned write to %s", committed.key)


def _nothing() -> None:
    return None


def _advanced(progress: Progress, *, lease_released: bool) -> dict[str, Any]:
    """What `chunks.advance` just committed, as the upload's new values."""
    values: dict[str, Any] = {
        "upload_offset": progress.offset,
        "upload_metadata": progress.state,
        "upload_length": progress.length,
        "status": "uploading",
        "updated_at": progress.at,
    }
    if progress.expires_at is not None:
        values["upload_expires_at"] = progress.expires_at
    if lease_released:
        values.update(lock_owner=None, lock_expires_at=None, lock_stop_requested=False)
    return values


__all__ = ["Chunk", "Clock", "NewUpload", "UploadService", "WriteOutcome", "stored", "utcnow"]
