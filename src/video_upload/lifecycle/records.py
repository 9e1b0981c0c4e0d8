"""The plain values the upload service takes and returns."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from video_upload.domain.checksums import ExpectedChecksum
from video_upload.domain.records import Video
from video_upload.storage.base import StoredUpload

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewUpload:
    """What a client asks for when it creates an upload."""

    length: int | None
    raw_metadata: str | None = None
    metadata: dict[str, str | None] = field(default_factory=dict)
    partial: bool = False
    declared_duration_seconds: float | None = None
    content_type: str | None = None
    require_video_type: bool = False


@dataclass(frozen=True)
class Chunk:
    """One PATCH (or creation-with-upload body) on its way in."""

    offset: int
    body: AsyncIterator[bytes]
    content_length: int | None = None
    declared_length: int | None = None
    checksum: ExpectedChecksum | None = None


@dataclass(frozen=True)
class WriteOutcome:
    video: Video
    disconnected: bool


def stored(video: Video, length: int | None = None) -> StoredUpload:
    """The store's view of `video`; `length` when a PATCH declares it (deferred length)."""
    return StoredUpload(
        key=video.storage_key,
        offset=video.upload_offset,
        state=video.upload_metadata,
        length=video.upload_length if length is None else length,
    )


def new_upload_row(
    *,
    now: datetime,
    expires_at: datetime,
    user_id: str,
    upload_id: str,
    session_id: uuid.UUID | None,
    length: int | None,
    state: dict[str, Any],
    tus_metadata: str | None,
    concat: str | None,
    filename: str,
    content_type: str,
    concat_parts: list[str] | None = None,
    declared_duration_seconds: float | None = None,
) -> Video:
    """A fresh, empty upload row; its bytes will live under the storage key `upload_id`."""
    return Video(
        id=uuid.uuid4(),
        user_id=user_id,
        session_id=session_id,
        upload_id=upload_id,
        upload_offset=0,
        upload_length=length,
        upload_completed=False,
        upload_metadata=state,
        upload_expires_at=expires_at,
        tus_metadata=tus_metadata,
        concat=concat,
        concat_parts=concat_parts,
        storage_key=upload_id,
        filename=filename,
        content_type=content_type,
        declared_duration_seconds=declared_duration_seconds,
        status="pending",
        created_at=now,
        updated_at=now,
    )
