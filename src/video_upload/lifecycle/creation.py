"""Creating uploads: checking what a client declares, then making the store's object and the row.

Used by `UploadService.create` (tus creation, REST init, concatenation partials) and
`UploadService.claim_initialised` (a tus POST aimed at an upload that REST init already made).
A zero-byte upload is completed by the service right after creation: there is nothing to send.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from video_upload import metrics
from video_upload.domain.errors import ERR_FORBIDDEN, ERR_LENGTH_MISMATCH, ERR_OFFSET_MISMATCH
from video_upload.domain.events import UPLOAD_CREATED
from video_upload.domain.records import Video
from video_upload.lifecycle.media import display_name, video_content_type
from video_upload.lifecycle.quotas import check_quota
from video_upload.lifecycle.records import Clock, NewUpload, new_upload_row

if TYPE_CHECKING:
    from video_upload.config import Settings
    from video_upload.lifecycle.events import EventRecorder
    from video_upload.persistence.database import Transaction, TransactionScope
    from video_upload.storage.base import UploadStore

T = TypeVar("T")


class CreationHost(Protocol):
    """What `UploadCreation` uses of the service that builds it (`UploadService`)."""

    clock: Clock
    events: EventRecorder
    events_committed: Callable[[], None]
    settings: Settings
    store: UploadStore

    def check_length(self, length: int) -> None: ...

    def database(self) -> TransactionScope: ...

    def next_expiry(self) -> datetime: ...

    async def owned_session(
        self, db: Transaction, user_id: str, session_id: str | None
    ) -> uuid.UUID: ...

    async def owned_upload(self, db: Transaction, user_id: str, upload_id: str) -> Video: ...

    async def storage_call(self, operation: Awaitable[T]) -> T: ...


class UploadCreation:
    def __init__(self, service: CreationHost) -> None:
        self.service = service

    async def create(self, user_id: str, new: NewUpload) -> Video:
        """A new upload of `user_id`, its store object made before its row is committed."""
        service = self.service
        if new.length is not None:
            service.check_length(new.length)
        # the type is guessed from the client's whole name: a long `….mp4` keeps its extension
        # only until the name is cut for display
        given_name = new.metadata.get("filename") or ""
        content_type = video_content_type(
            new.content_type or new.metadata.get("filetype"),
            display_name(given_name, limit=None),
            required=new.require_video_type,
        )
        filename = display_name(given_name)
        upload_id = secrets.token_hex(16)
        async with service.database() as db:
            await check_quota(db, service.settings, user_id, new.length, service.clock())
            session_id = None
            if not new.partial:
                session_id = await service.owned_session(
                    db, user_id, new.metadata.get("session_id")
                )
            state = await service.storage_call(service.store.create(upload_id))
            video = new_upload_row(
                now=service.clock(),
                expires_at=service.next_expiry(),
                user_id=user_id,
                upload_id=upload_id,
                session_id=session_id,
                length=new.length,
                state=state,
                tus_metadata=new.raw_metadata,
                concat="partial" if new.partial else None,
                filename=filename,
                content_type=content_type,
                declared_duration_seconds=new.declared_duration_seconds,
            )
            await db.videos.add(video)
            if not new.partial:  # a partial is only ever part of a video
                await service.events.record(db, UPLOAD_CREATED, video)
            await db.commit()
        metrics.uploads_created.inc()
        if not new.partial:
            service.events_committed()
        return video

    async def claim_initialised(
        self, user_id: str, upload_id: str, length: int | None, raw_metadata: str | None = None
    ) -> Video:
        """A tus POST aimed at an upload made by REST init: accept it as that upload's creation.

        The POST's `Upload-Metadata` is kept, as a tus creation keeps it (HEAD answers with it);
        the file name, type and session stay those of the init.
        """
        async with self.service.database() as db:
            video = await self.service.owned_upload(db, user_id, upload_id)
        if video.concat is not None:
            raise ERR_FORBIDDEN.with_message("a concatenation upload cannot be re-created")
        if length is None or length != video.upload_length:
            raise ERR_LENGTH_MISMATCH.with_message(
                f"Upload-Length must equal the initialised file size {video.upload_length}"
            )
        if video.upload_offset != 0:
            raise ERR_OFFSET_MISMATCH.with_headers(**{"Upload-Offset": str(video.upload_offset)})
        if raw_metadata is not None and raw_metadata != video.tus_metadata:
            values = {"tus_metadata": raw_metadata, "updated_at": self.service.clock()}
            async with self.service.database() as db:
                await db.videos.update(upload_id, values)
                await db.commit()
            video.update(values)
        return video
