"""Recording webhook events in the transaction of the change they report.

The upload lifecycle calls `EventRecorder.record(db, type, video)` inside the database
transaction that makes the change (creating, completing, rejecting, expiring, aborting an
upload), before it commits; `persistence.outbox` keeps one delivery per receiver URL, and
`lifecycle.webhooks` sends them. With no `WEBHOOK_URL`, nothing is recorded.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from video_upload.config import Settings
from video_upload.domain.events import COMPLETED, REJECTED, Event
from video_upload.domain.records import Video

if TYPE_CHECKING:
    from video_upload.persistence.database import Transaction

# What every event tells about its video, and what the probe adds once it has run.
_ALWAYS = ("upload_id", "user_id", "status", "filename", "content_type", "upload_length")
_PROBED = (
    "duration_seconds",
    "declared_duration_seconds",
    "duration_mismatch",
    "container_format",
    "video_codec",
    "audio_codec",
    "width",
    "height",
    "frame_rate",
    "has_thumbnail",
)
_REJECTION = ("rejection_code", "rejection_reason")


def event_data(event_type: str, video: Video) -> dict[str, Any]:
    """The event's `data`: the video as a receiver needs it (plain JSON values)."""
    data: dict[str, Any] = {
        "video_id": str(video.id),
        "session_id": None if video.session_id is None else str(video.session_id),
        **{name: getattr(video, name) for name in _ALWAYS},
    }
    if event_type == COMPLETED:
        data.update({name: getattr(video, name) for name in _PROBED})
        data["completed_at"] = _iso(video.completed_at)
    if event_type == REJECTED:
        data.update({name: getattr(video, name) for name in _REJECTION})
    return data


def new_event(event_type: str, video: Video, at: datetime) -> Event:
    event_id = f"evt_{uuid.uuid4().hex}"
    payload = {"type": event_type, "timestamp": _iso(at), "data": event_data(event_type, video)}
    return Event(
        id=event_id,
        type=event_type,
        upload_id=video.upload_id,
        payload=json.dumps(payload, separators=(",", ":")),
        created_at=at,
    )


class EventRecorder:
    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.urls = settings.webhook_urls
        self.clock = clock

    async def record(self, db: Transaction, event_type: str, video: Video) -> None:
        """Queue the event in `db`'s transaction (it is sent once the caller commits)."""
        if self.urls:
            await db.outbox.add(new_event(event_type, video, self.clock()), self.urls)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
