"""The metadata tables: practice sessions and the videos (uploads) they own (ORM mappings,
used only inside `persistence`; the other layers get `domain.records` dataclasses).

`videos` carries the tus columns of the API documentation (`upload_id`, `upload_offset`,
`upload_completed`, `upload_metadata`, `upload_expires_at`); `upload_metadata` holds the store's
own bookkeeping (for S3, the multipart upload and its parts), committed in the same statement as
the offset so the two never disagree.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every back end (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PracticeSessionRow(Base):
    __tablename__ = "practice_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class VideoRow(Base):
    __tablename__ = "videos"
    __table_args__ = (Index("ix_videos_expiry", "upload_completed", "upload_expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("practice_sessions.id", ondelete="CASCADE"), index=True
    )
    upload_id: Mapped[str] = mapped_column(String(100), unique=True)
    upload_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    upload_length: Mapped[int | None] = mapped_column(BigInteger)
    upload_completed: Mapped[bool] = mapped_column(Boolean, default=False)
    upload_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    upload_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tus_metadata: Mapped[str | None] = mapped_column(Text)
    concat: Mapped[str | None] = mapped_column(String(16))
    concat_parts: Mapped[list[str] | None] = mapped_column(JSON)
    storage_key: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(255), default="")
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    declared_duration_seconds: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The writer lease (see lifecycle.leases): who may write, until when, and whether a newer
    # request of the owner asked the holder to stop and save.
    lock_owner: Mapped[str | None] = mapped_column(String(64))
    lock_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lock_stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the probe on completion found (see video_upload.media); empty until then. A rejected
    # video (status "rejected") keeps its row with the reason, and its bytes are gone.
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    container_format: Mapped[str | None] = mapped_column(String(64))
    video_codec: Mapped[str | None] = mapped_column(String(32))
    audio_codec: Mapped[str | None] = mapped_column(String(32))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    frame_rate: Mapped[float | None] = mapped_column(Float)
    duration_mismatch: Mapped[bool | None] = mapped_column(Boolean)
    has_thumbnail: Mapped[bool] = mapped_column(Boolean, default=False)
    rejection_code: Mapped[str | None] = mapped_column(String(32))
    rejection_reason: Mapped[str | None] = mapped_column(String(500))


class WebhookDeliveryRow(Base):
    """The webhook outbox: one row per event and receiver URL, written in the same transaction
    as the state change the event reports (see `persistence.outbox`)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "upload_id", "url", "seq"),
    )

    # the order events were written in (SQLite numbers an INTEGER primary key by itself)
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    upload_id: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StagedPieceRow(Base):
    """A chunk's remainder smaller than an S3 part, waiting for the rest of its part
    (`S3_STAGING=database`; see `persistence.staging` and `storage.s3_staging`). An unfinished
    upload has fewer bytes here than one part, plus what abandoned writes left, which finishing
    or terminating the upload deletes."""

    __tablename__ = "staged_pieces"

    object_key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tag: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
