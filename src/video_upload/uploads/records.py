"""The plain values the upload service takes and returns, and its database session guard."""

from __future__ import annotations

import logging
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


def stored(video: Video) -> StoredUpload:
    return StoredUpload(
        key=video.storage_key, offset=video.upload_offset, state=video.upload_metadata
    )


class DatabaseSession:
    """An AsyncSession whose connection failures become a retryable 503."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._session = factory()

    async def __aenter__(self) -> AsyncSession:
        return self._session

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        await self._session.close()
        unavailable = OperationalError | DBAPIError | PoolTimeoutError
        if isinstance(exc, unavailable) and not isinstance(exc, ServiceError):
            log.warning("database unavailable: %s", exc)
            raise ServiceError(ERR_DATABASE_UNAVAILABLE) from exc
