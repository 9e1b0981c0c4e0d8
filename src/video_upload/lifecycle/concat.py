"""tus concatenation: final uploads assembled from partial uploads, possibly unfinished ones.

A final upload is a row with `concat="final"` and the ids of its partials, in order. It is
assembled (by the store's `concatenate`, server-side where the store can) as soon as every
partial is complete: at creation if they already are, otherwise when the last partial finishes
or when the final upload is asked about (HEAD, status, complete).

Storage rule: once a final upload has been assembled, the partials it consumed are deleted
(bytes and rows) unless another unfinished final upload still lists them. A partial that never
becomes part of a final upload expires like any other incomplete upload.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from video_upload import metrics
from video_upload.domain.errors import (
    ERR_INVALID_CONCAT,
    ERR_UPLOAD_GONE,
    ERR_UPLOAD_NOT_FOUND,
    ServiceError,
)
from video_upload.domain.events import UPLOAD_CREATED
from video_upload.domain.records import Video
from video_upload.lifecycle.media import display_name, video_content_type
from video_upload.lifecycle.records import Clock, new_upload_row, stored

if TYPE_CHECKING:
    from video_upload.lifecycle.events import EventRecorder
    from video_upload.lifecycle.leases import WriterLeases
    from video_upload.persistence.database import Transaction, TransactionScope
    from video_upload.storage.base import UploadStore

T = TypeVar("T")


class ConcatHost(Protocol):
    """What `Concatenator` uses of the service that builds it (`UploadService`)."""

    clock: Clock
    events: EventRecorder
    events_committed: Callable[[], None]
    leases: WriterLeases
    store: UploadStore

    def check_length(self, length: int) -> None: ...

    def database(self) -> TransactionScope: ...

    def is_expired(self, video: Video) -> bool: ...

    def next_expiry(self) -> datetime: ...

    async def owned_session(
        self, db: Transaction, user_id: str, session_id: str | None
    ) -> uuid.UUID: ...

    async def storage_call(self, operation: Awaitable[T]) -> T: ...


class Concatenator:
    def __init__(self, uploads: ConcatHost) -> None:
        self.uploads = uploads

    async def create_final(
        self,
        user_id: str,
        part_ids: list[str],
        raw_metadata: str | None,
        metadata: dict[str, str | None],
    ) -> Video:
        """Create a final upload out of partial ones (which may still be unfinished)."""
        if len(set(part_ids)) != len(part_ids):
            # each partial's bytes are copied once per listing: a repeated one multiplies disk use
            raise ERR_INVALID_CONCAT.with_message("a partial upload may be listed only once")
        async with self.uploads.database() as db:
            parts = await self._owned_partials(db, user_id, part_ids)
            for pending in await db.videos.unfinished_finals(user_id):
                taken = set(pending.concat_parts or []) & set(part_ids)
                if taken:
                    raise ERR_INVALID_CONCAT.with_message(
                        f"partial upload {sorted(taken)[0]} already belongs to the unfinished "
                        f"final upload {pending.upload_id}"
                    )
            session_id = await self.uploads.owned_session(db, user_id, metadata.get("session_id"))
            filename = display_name(metadata.get("filename"))
            lengths = [part.upload_length for part in parts]
            total = None if None in lengths else sum(length or 0 for length in lengths)
            if total is not None:
                self.uploads.check_length(total)
            upload_id = secrets.token_hex(16)
            video = new_upload_row(
                now=self.uploads.clock(),
                expires_at=self.uploads.next_expiry(),
                user_id=user_id,
                upload_id=upload_id,
                session_id=session_id,
                length=total,
                state={},
                tus_metadata=raw_metadata,
                concat="final",
                concat_parts=part_ids,
                filename=filename,
                content_type=video_content_type(metadata.get("filetype"), filename, required=False),
            )
            await db.videos.add(video)
            await self.uploads.events.record(db, UPLOAD_CREATED, video)
            await db.commit()
        metrics.uploads_created.inc()
        self.uploads.events_committed()
        return await self.refresh_final(video)

    async def _owned_partials(
        self, db: Transaction, user_id: str, part_ids: list[str]
    ) -> list[Video]:
        found = {video.upload_id: video for video in await db.videos.by_upload_ids(part_ids)}
        parts = []
        for part_id in part_ids:
            part = found.get(part_id)
            if part is None or part.user_id != user_id:
                raise ERR_UPLOAD_NOT_FOUND.with_message(f"partial upload {part_id} not found")
            if part.concat != "partial":
                raise ERR_INVALID_CONCAT.with_message(f"upload {part_id} is not a partial upload")
            if self.uploads.is_expired(part):
                raise ERR_UPLOAD_GONE.with_message(f"partial upload {part_id} expired")
            parts.append(part)
        return parts

    async def refresh_final(self, video: Video) -> Video:
        """Assemble a final upload once all its partials are complete."""
        if video.concat != "final" or video.upload_completed:
            return video
        async with self.uploads.leases.exclusive(video.upload_id):
            async with self.uploads.database() as db:
                current = await db.videos.by_upload_id(video.upload_id)
                if current is None:
                    raise ServiceError(ERR_UPLOAD_NOT_FOUND)
                if current.upload_completed:
                    return current
                part_ids = current.concat_parts or []
                parts = await self._owned_partials(db, current.user_id, part_ids)
            if not all(part.upload_completed for part in parts):
                return current
            concatenate = getattr(self.uploads.store, "concatenate", None)
            if concatenate is None:
                raise ERR_INVALID_CONCAT.with_message("this store cannot concatenate")
            state = await self.uploads.storage_call(
                concatenate(current.storage_key, [stored(p) for p in parts])
            )
            total = sum(part.upload_offset for part in parts)
            values: dict[str, Any] = {
                "upload_metadata": state,
                "upload_offset": total,
                "upload_length": total,
                "upload_completed": True,
                "upload_expires_at": None,
                "status": "uploaded",
                "updated_at": self.uploads.clock(),
            }
            async with self.uploads.database() as db:
                await db.videos.update(current.upload_id, values)
                await db.commit()
            current.update(values)
        await self.release_partials(current.user_id, parts)
        return current

    async def release_partials(self, user_id: str, parts: list[Video]) -> None:
        """Free consumed partials that no unfinished final upload still lists."""
        async with self.uploads.database() as db:
            pending = await db.videos.unfinished_finals(user_id)
        still_needed = {part for final in pending for part in final.concat_parts or []}
        for part in parts:
            if part.upload_id in still_needed:
                continue
            await self.uploads.storage_call(self.uploads.store.terminate(stored(part)))
            async with self.uploads.database() as db:
                await db.videos.remove(part.upload_id)
                await db.commit()

    async def finals_waiting_for(self, part: Video) -> None:
        async with self.uploads.database() as db:
            pending = await db.videos.unfinished_finals(part.user_id)
        for final in pending:
            if part.upload_id in (final.concat_parts or []):
                await self.refresh_final(final)
