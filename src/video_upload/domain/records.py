"""The records the service keeps about practice sessions and their videos (uploads).

These are plain dataclasses: persistence reads and writes them, the upload lifecycle decides
with them, and the HTTP layer shapes its answers from them. A `Video` carries the tus columns of
the API documentation (`upload_id`, `upload_offset`, `upload_completed`, `upload_metadata`,
`upload_expires_at`); `upload_metadata` holds the store's own bookkeeping (for S3, the multipart
upload and its parts), committed together with the offset so the two never disagree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class PracticeSession:
    id: uuid.UUID
    user_id: str
    name: str
    created_at: datetime


@dataclass(slots=True)
class Video:
    """One upload and, once complete, the video it became."""

    id: uuid.UUID
    user_id: str
    session_id: uuid.UUID | None
    upload_id: str
    storage_key: str
    created_at: datetime
    updated_at: datetime
    upload_offset: int = 0
    upload_length: int | None = None
    upload_completed: bool = False
    upload_metadata: dict[str, Any] = field(default_factory=dict)
    upload_expires_at: datetime | None = None
    tus_metadata: str | None = None
    concat: str | None = None
    concat_parts: list[str] | None = None
    filename: str = ""
    content_type: str = "application/octet-stream"
    declared_duration_seconds: float | None = None
    status: str = "pending"  # then uploading, uploaded, completed; or rejected, expired
    completed_at: datetime | None = None
    # The writer lease (see lifecycle.leases): who may write, until when, and whether a newer
    # request of the owner asked the holder to stop and save.
    lock_owner: str | None = None
    lock_expires_at: datetime | None = None
    lock_stop_requested: bool = False
    # What the probe on completion found (see video_upload.media); empty until then. A rejected
    # video keeps its record with the reason, and its bytes are gone.
    duration_seconds: float | None = None
    container_format: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    duration_mismatch: bool | None = None
    has_thumbnail: bool = False
    rejection_code: str | None = None
    rejection_reason: str | None = None

    def update(self, values: dict[str, Any]) -> None:
        """Set what a statement just committed (column names as keys)."""
        for name, value in values.items():
            setattr(self, name, value)


@dataclass(frozen=True, slots=True)
class UserUsage:
    """What one user holds now, for the per-user limits (see lifecycle.quotas)."""

    unfinished_uploads: int
    unfinished_bytes: int  # declared lengths (or bytes received, where not declared yet)
    stored_bytes: int  # completed videos
    created_last_minute: int


@dataclass(frozen=True, slots=True)
class LeaseState:
    """Who holds an upload's writer lease, until when, and whether it was asked to stop."""

    user_id: str
    owner: str | None
    expires_at: datetime | None
    stop_requested: bool


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a write left an upload, committed together with the new offset."""

    offset: int
    state: dict[str, Any]
    length: int | None
    expires_at: datetime | None  # None: the upload's expiry stays as it is
    at: datetime


VIDEO_FIELDS = tuple(Video.__dataclass_fields__)
