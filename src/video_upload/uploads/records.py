"""The plain values the upload service takes and returns, and its database session guard."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from video_upload.checksums import ExpectedChecksum
from video_upload.db.models import Video
from video_upload.errors import ERR_DATABASE_UNAVAILABLE, ServiceError
from video_upload.storage.base import StoredUpload

log = logging.getLogger(__name__)

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


def raise_if_unavailable(exc: BaseException | None) -> None:
    """Turn the database's connection failures (and pool timeouts) into a retryable 503."""
    unavailable = OperationalError | DBAPIError | PoolTimeoutError
    if isinstance(exc, unavailable) and not isinstance(exc, ServiceError):
        log.warning("database unavailable: %s", exc)
        raise ServiceError(ERR_DATABASE_UNAVAILABLE) from exc


class DatabaseSession:
    """An AsyncSession whose connection failures become a retryable 503."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._session = factory()

    async def __aenter__(self) -> AsyncSession:
        return self._session

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        await self._session.close()
        raise_if_unavailable(exc)


class DirectCall:
    """A `db.chunks` call whose connection failures become a retryable 503."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        raise_if_unavailable(exc)


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
