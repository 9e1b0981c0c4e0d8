"""Converting between the ORM rows (`persistence.models`) and the domain's dataclasses."""

from __future__ import annotations

from typing import Any

from video_upload.domain.records import VIDEO_FIELDS, PracticeSession, Video
from video_upload.persistence.models import PracticeSessionRow, VideoRow


def video_of(row: VideoRow) -> Video:
    return Video(**{name: getattr(row, name) for name in VIDEO_FIELDS})


def video_from_columns(columns: dict[str, Any]) -> Video:
    """A `Video` from a statement's returned columns (every column of the table, by key)."""
    return Video(**columns)


def video_row(video: Video) -> VideoRow:
    return VideoRow(**{name: getattr(video, name) for name in VIDEO_FIELDS})


def session_of(row: PracticeSessionRow) -> PracticeSession:
    return PracticeSession(id=row.id, user_id=row.user_id, name=row.name, created_at=row.created_at)


def session_row(session: PracticeSession) -> PracticeSessionRow:
    return PracticeSessionRow(
        id=session.id, user_id=session.user_id, name=session.name, created_at=session.created_at
    )
