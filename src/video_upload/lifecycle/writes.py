"""Writing uploads: appending chunks, settling an upload for a HEAD, and sealing finished ones.

`UploadService` (`lifecycle.service`) builds one `UploadWriter` and delegates its `settled`,
`write` and `ensure_finished` to it, and the completion of a zero-byte upload right after its
creation. This is the per-chunk hot path: a write takes two statements on the common path
(take the lease, which returns the row; commit the offset, which gives the lease back).

Durability rule: bytes go to the store first and the offset is committed after, with a
conditional update on the offset the write started from. The database therefore never claims
bytes the store does not hold (short of a machine crash before they were flushed, which
`lifecycle.recovery` repairs), and of two racing writers only one can commit; bytes written
for a write that does not commit are discarded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from video_upload import metrics
from video_upload.domain.errors import (
    ERR_CHECKSUM_MISMATCH,
    ERR_EXCEEDS_LENGTH,
    ERR_FINAL_UPLOAD_PATCH,
    ERR_INVALID_LENGTH,
    ERR_OFFSET_MISMATCH,
    ServiceError,
)
from video_upload.domain.records import Progress, Video
from video_upload.lifecycle.quotas import check_quota, limits_enabled
from video_upload.lifecycle.records import Chunk, Clock, WriteOutcome, stored
from video_upload.lifecycle.streams import GuardedBody
from video_upload.storage.base import StorageError

if TYPE_CHECKING:
    from video_upload.config import Settings
    from video_upload.lifecycle.concat import Concatenator
    from video_upload.lifecycle.leases import Lease, WriterLeases
    from video_upload.lifecycle.locks import UploadLocks
    from video_upload.lifecycle.recovery import CrashRecovery
    from video_upload.persistence.chunks import ChunkStatements
    from video_upload.persistence.database import TransactionScope
    from video_upload.storage.base import StoredUpload, UploadStore, WriteResult

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a HEAD waits for an in-flight PATCH to settle before answering with the committed
# offset anyway (HEAD never fails because someone is writing).
HEAD_WAIT_SECONDS = 3.0


class WriteHost(Protocol):
    """What `UploadWriter` uses of the service that builds it (`UploadService`)."""

    chunks: ChunkStatements
    clock: Clock
    concat: Concatenator
    expiry_step: timedelta
    leases: WriterLeases
    locks: UploadLocks
    recovery: CrashRecovery
    settings: Settings
    store: UploadStore

    def check_length(self, length: int) -> None: ...

    def check_owned(self, video: Video | None, user_id: str) -> Video: ...

    def database(self) -> TransactionScope: ...

    async def get(self, user_id: str, upload_id: str) -> Video: ...

    def next_expiry(self) -> datetime: ...

    async def storage_call(self, operation: Awaitable[T]) -> T: ...


class UploadWriter:
    def __init__(self, service: WriteHost) -> None:
        self.service = service

    async def settled(self, user_id: str, upload_id: str) -> Video:
        """The upload once any older request writing to it has been pre-empted and has saved.

        This is what a tus HEAD answers: a client asks where it stands when it is about to
        resume, so whatever its previous (stalled or dropped) PATCH received counts.
        """
        service = self.service
        video = await service.get(user_id, upload_id)
        if not service.leases.is_busy(video) and not await service.recovery.lost_bytes(video):
            return video
        try:
            async with service.leases.exclusive(
                upload_id, preempt=True, wait_seconds=HEAD_WAIT_SECONDS
            ) as lease:
                return await service.recovery.rewind_to_held(
                    service.check_owned(lease.video, user_id)
                )
        except ServiceError as error:
            if error.kind.status != 423:
                raise
            return video  # a live writer is still receiving: report the committed offset

    async def write(self, user_id: str, upload_id: str, chunk: Chunk) -> WriteOutcome:
        """Append a chunk: two statements on the common path (take the lease, which returns
        the row; commit the offset, which gives the lease back)."""
        service = self.service
        if service.locks.is_held(upload_id):  # a writer here may be pre-empted: owners only
            await service.get(user_id, upload_id)
        async with service.leases.exclusive(upload_id, preempt=True, user_id=user_id) as lease:
            video = await service.recovery.rewind_to_held(service.check_owned(lease.video, user_id))
            if video.concat == "final":
                raise ServiceError(ERR_FINAL_UPLOAD_PATCH)
            length = self._settle_length(video, chunk.declared_length)
            settings = service.settings
            if video.upload_length is None and length is not None and limits_enabled(settings):
                # a deferred length counted as the bytes received so far: what it adds now
                # must fit the user's byte limits as a declared one would have at creation
                async with service.database() as db:
                    await check_quota(
                        db,
                        settings,
                        video.user_id,
                        length - video.upload_offset,
                        service.clock(),
                        creating=False,
                    )
            if chunk.offset != video.upload_offset:
                raise ERR_OFFSET_MISMATCH.with_headers(
                    **{"Upload-Offset": str(video.upload_offset)}
                )
            limit = (length if length is not None else settings.max_upload_size) - chunk.offset
            if chunk.content_length is not None and chunk.content_length > limit:
                raise ERR_EXCEEDS_LENGTH.with_message(
                    f"the body of {chunk.content_length} bytes goes past the upload's length"
                )
            body = GuardedBody(
                chunk.body,
                limit=limit,
                checksum=chunk.checksum,
                holding=service.locks.holding(upload_id),
            )
            committed = stored(video, length)
            result = await service.storage_call(service.store.write(committed, body.chunks()))
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
                video = await self.finish(video)
        if video.concat == "partial" and video.upload_completed:
            await service.concat.finals_waiting_for(video)
        return WriteOutcome(video, disconnected=body.disconnected)

    def _settle_length(self, video: Video, declared: int | None) -> int | None:
        if declared is None:
            return video.upload_length
        if video.upload_length is None:
            self.service.check_length(declared)
            if declared < video.upload_offset:
                raise ERR_INVALID_LENGTH.with_message("Upload-Length is below the current offset")
            return declared
        if declared != video.upload_length:
            raise ERR_INVALID_LENGTH.with_message("Upload-Length cannot be changed once set")
        return declared

    def _moved_expiry(self, video: Video) -> datetime | None:
        """The expiry a write gives the upload, or None to keep its own: it moves in steps of at
        least the service's `expiry_step`, so most PATCHes leave the expiry and its index
        untouched."""
        expires_at = self.service.next_expiry()
        current = video.upload_expires_at
        if current is not None and expires_at - current < self.service.expiry_step:
            return None
        return expires_at

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
            at=self.service.clock(),
        )
        finishing = length is not None and result.offset == length
        try:
            advanced = await self.service.chunks.advance(
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

    async def finish(self, video: Video) -> Video:
        """Seal an upload whose every byte has arrived, under its lease. Safe to repeat."""
        if video.upload_completed:
            return video
        service = self.service
        state = await service.storage_call(service.store.finish(stored(video)))
        now = service.clock()
        # a finished partial upload still expires unless a final upload consumes it
        expires_at = service.next_expiry() if video.concat == "partial" else None
        await service.chunks.finish(video.upload_id, state=state, expires_at=expires_at, at=now)
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
        service = self.service
        async with service.leases.exclusive(video.upload_id):
            video = await service.recovery.rewind_to_held(video)
            if video.upload_offset != video.upload_length:
                return video
            return await self.finish(video)

    async def _discard(self, committed: StoredUpload, result: WriteResult) -> None:
        try:
            await self.service.store.discard(committed, result)
        except StorageError:
            log.warning("could not discard an abandoned write to %s", committed.key)


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
