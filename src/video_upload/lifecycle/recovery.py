"""Recovering from a machine crash that took away bytes a store had not yet flushed.

A store may leave flushing a PATCH's bytes to disk until the upload finishes (the local store's
default; see `UploadStore.held`). A crash of the machine can then leave an unfinished upload
whose committed offset claims bytes the store no longer holds. Before anything reads or extends
such an upload's offset (HEAD, REST status, PATCH, completion), the service moves it back to
what the store holds; the client, which asks for the offset before it resumes, sends the rest
again. Nothing is lost or corrupted, only re-sent.

The opposite case, a database that lost its latest per-chunk commits (see
`persistence.engine.create_chunk_engine`), needs nothing here: the store then holds more than
the offset claims, and the next write starts from the committed offset, overwriting the surplus.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol, TypeVar

from video_upload.domain.records import Video
from video_upload.lifecycle.records import Clock, stored

if TYPE_CHECKING:
    from video_upload.persistence.database import TransactionScope
    from video_upload.storage.base import UploadStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class RecoveryHost(Protocol):
    """What `CrashRecovery` uses of the service that builds it (`UploadService`)."""

    clock: Clock
    store: UploadStore

    def database(self) -> TransactionScope: ...

    async def storage_call(self, operation: Awaitable[T]) -> T: ...


class CrashRecovery:
    def __init__(self, service: RecoveryHost) -> None:
        self.service = service

    async def lost_bytes(self, video: Video) -> bool:
        """Whether the store lost committed bytes of this unfinished upload (a machine crash
        before they were flushed; see `UploadStore.held`)."""
        if video.upload_completed or video.upload_offset == 0:
            return False
        held = await self.service.storage_call(self.service.store.held(stored(video)))
        return held < video.upload_offset

    async def rewind_to_held(self, video: Video) -> Video:
        """Under the upload's lease: move it back to the bytes its store still holds, so the
        client's next HEAD tells it to send the lost ones again."""
        if video.upload_completed or video.upload_offset == 0:
            return video
        held = await self.service.storage_call(self.service.store.held(stored(video)))
        if held >= video.upload_offset:
            return video
        log.warning(
            "upload %s: the store holds %d of its %d committed bytes (lost in a machine crash "
            "before they were flushed); moving it back so the client sends them again",
            video.upload_id,
            held,
            video.upload_offset,
        )
        now = self.service.clock()
        async with self.service.database() as db:
            moved = await db.videos.rewind(
                video.upload_id, from_offset=video.upload_offset, to_offset=held, now=now
            )
            await db.commit()
        if moved:
            video.upload_offset, video.updated_at = held, now
        return video
