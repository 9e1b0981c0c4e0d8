"""Request and response bodies of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from video_upload.domain.records import PracticeSession, Video
from video_upload.http.tus.bounds import UPLOAD_ID_PATTERN
from video_upload.lifecycle.media import MAX_CONTENT_TYPE, MEDIA_TYPE_PATTERN

# Text the database keeps: PostgreSQL refuses a NUL in any text, so it is refused here (422)
# instead of failing the statement (which is answered 503, and retried forever).
NO_NUL_PATTERN = r"^[^\x00]*$"


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class SessionCreate(BaseModel):
    name: str = Field(default="", max_length=255, pattern=NO_NUL_PATTERN)


class SessionOut(BaseModel):
    id: uuid.UUID
    user_id: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, session: PracticeSession) -> SessionOut:
        return cls(
            id=session.id, user_id=session.user_id, name=session.name, created_at=session.created_at
        )


class UploadInit(BaseModel):
    """What a client declares. `file_size` and `duration_seconds` are checked by the handler
    (400 and 413 with the service's own codes); the document states their bounds, with the
    configured maxima (see `rest.openapi`)."""

    session_id: uuid.UUID
    filename: str = Field(
        min_length=1,
        max_length=1024,
        description="the client's file name; its last 255 characters or fewer are shown",
    )
    file_size: int = Field(
        json_schema_extra={"exclusiveMinimum": 0}, description="bytes, at most MAX_VIDEO_SIZE_MB"
    )
    duration_seconds: float = Field(
        json_schema_extra={"exclusiveMinimum": 0},
        description="seconds, at most MAX_VIDEO_DURATION_MINUTES",
    )
    content_type: str | None = Field(
        default=None,
        max_length=MAX_CONTENT_TYPE,
        pattern=MEDIA_TYPE_PATTERN,
        description="a video media type, e.g. video/mp4; by default, guessed from the file name",
    )


class UploadInitOut(BaseModel):
    upload_id: str
    upload_url: str
    expires_at: datetime | None
    chunk_size: int
    video_id: uuid.UUID


class UploadStatus(BaseModel):
    upload_id: str
    offset: int
    size: int | None
    completed: bool
    expires_at: datetime | None
    percentage: float
    status: str
    video_id: uuid.UUID

    @classmethod
    def of(cls, video: Video) -> UploadStatus:
        return cls(
            upload_id=video.upload_id,
            offset=video.upload_offset,
            size=video.upload_length,
            completed=video.upload_completed,
            expires_at=None if video.upload_completed else video.upload_expires_at,
            percentage=percentage(video),
            status=video.status,
            video_id=video.id,
        )


class UploadComplete(BaseModel):
    upload_id: str = Field(min_length=1, max_length=100, pattern=UPLOAD_ID_PATTERN)


class VideoOut(BaseModel):
    id: uuid.UUID
    upload_id: str
    session_id: uuid.UUID | None
    filename: str
    content_type: str
    size: int | None
    offset: int
    percentage: float
    upload_completed: bool
    status: str = Field(description="pending, uploading, uploaded, completed, rejected or expired")
    declared_duration_seconds: float | None = Field(description="what the client said at init")
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    # What the probe on completion found (null until then, or with VIDEO_PROBE off).
    duration_seconds: float | None = Field(description="the real duration, probed on completion")
    duration_mismatch: bool | None = Field(
        description="whether the real duration is far from the declared one"
    )
    container: str | None = Field(description="container format, e.g. mp4, mov, matroska,webm")
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    frame_rate: float | None
    has_thumbnail: bool = Field(description="GET /api/v1/videos/{id}/thumbnail has a JPEG")
    rejection_code: str | None = Field(description="why a rejected video was refused (a code)")
    rejection_reason: str | None = Field(description="why a rejected video was refused")

    @classmethod
    def of(cls, video: Video) -> VideoOut:
        return cls(
            id=video.id,
            upload_id=video.upload_id,
            session_id=video.session_id,
            filename=video.filename,
            content_type=video.content_type,
            size=video.upload_length,
            offset=video.upload_offset,
            percentage=percentage(video),
            upload_completed=video.upload_completed,
            status=video.status,
            declared_duration_seconds=video.declared_duration_seconds,
            expires_at=None if video.upload_completed else video.upload_expires_at,
            created_at=video.created_at,
            updated_at=video.updated_at,
            completed_at=video.completed_at,
            duration_seconds=video.duration_seconds,
            duration_mismatch=video.duration_mismatch,
            container=video.container_format,
            video_codec=video.video_codec,
            audio_codec=video.audio_codec,
            width=video.width,
            height=video.height,
            frame_rate=video.frame_rate,
            has_thumbnail=bool(video.has_thumbnail),
            rejection_code=video.rejection_code,
            rejection_reason=video.rejection_reason,
        )


def percentage(video: Video) -> float:
    if video.upload_completed:
        return 100.0
    if not video.upload_length:
        return 0.0
    return round(min(100.0, 100.0 * video.upload_offset / video.upload_length), 2)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Invalid request data or upload parameters",
        401: "Missing or invalid authentication",
        403: "The resource belongs to another user",
        404: "Not found",
        409: "Conflict (offset mismatch, upload incomplete)",
        410: "Upload expired",
        413: "File exceeds the size limit",
        415: "Not a video type",
        422: "Validation error, or (complete) the file is not an acceptable video",
        503: "Database or storage temporarily unavailable",
    }.items()
}
