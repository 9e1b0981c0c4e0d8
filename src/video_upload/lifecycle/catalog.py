"""Practice sessions and finished videos: what the REST API reads and finalises.

Completion is where a file becomes a video, or does not. The first `complete` of an upload
probes the stored file (`video_upload.media`, unless `VIDEO_PROBE` is off): a file that is not a
decodable video, or that lasts longer than `MAX_VIDEO_DURATION_MINUTES` (plus a second of grace
for container rounding), is rejected: its row is kept with `status="rejected"` and the reason,
its storage is freed, and the answer is 422. A video keeps what the probe found (real duration,
container, codecs, size, frame rate; whether the declared duration was far off) and a JPEG
thumbnail beside its bytes. A repeated `complete` gives the same answer without probing again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from video_upload import metrics
from video_upload.domain.errors import (
    ERR_FORBIDDEN,
    ERR_INVALID_CONCAT,
    ERR_PROBE_FAILED,
    ERR_THUMBNAIL_NOT_FOUND,
    ERR_UPLOAD_INCOMPLETE,
    ERR_UPLOAD_NOT_FOUND,
    ERR_VIDEO_NOT_FOUND,
    ERR_VIDEO_TOO_LONG,
    REJECTIONS,
    ServiceError,
)
from video_upload.domain.events import COMPLETED, REJECTED
from video_upload.domain.records import PracticeSession, Video
from video_upload.lifecycle.service import UploadService, stored
from video_upload.media import THUMBNAIL_NAME, ProbeLimits, ProbeRejected, VideoFacts, examine
from video_upload.storage.base import ByteRange, SidecarStore, StorageError

log = logging.getLogger(__name__)

DURATION_GRACE_SECONDS = 1.0
# A real duration differing from the declared one by more than this (seconds, or share of the
# real duration, whichever is larger) is recorded as a mismatch.
MISMATCH_SECONDS = 1.0
MISMATCH_SHARE = 0.10


@dataclass(frozen=True)
class Content:
    video: Video
    byte_range: ByteRange
    chunks: AsyncIterator[bytes]


# The statuses a probe ends in; neither is ever changed again.
FINAL_VERDICTS = ("completed", "rejected")


class VideoCatalog:
    def __init__(self, uploads: UploadService, probe_limits: ProbeLimits | None = None) -> None:
        self.uploads = uploads
        self.probe_limits = probe_limits or ProbeLimits()

    async def create_session(self, user_id: str, name: str) -> PracticeSession:
        session = PracticeSession(
            id=uuid.uuid4(), user_id=user_id, name=name, created_at=self.uploads.clock()
        )
        async with self.uploads.database() as db:
            await db.sessions.add(session)
            await db.commit()
        return session

    async def session(self, user_id: str, session_id: uuid.UUID) -> PracticeSession:
        async with self.uploads.database() as db:
            await self.uploads.owned_session(db, user_id, str(session_id))
            session = await db.sessions.get(session_id)
        assert session is not None
        return session

    async def session_videos(
        self, user_id: str, session_id: uuid.UUID, *, offset: int = 0, limit: int | None = None
    ) -> list[Video]:
        """A page of the session's videos, oldest first (all of them without `limit`)."""
        async with self.uploads.database() as db:
            await self.uploads.owned_session(db, user_id, str(session_id))
            return await db.videos.in_session(session_id, offset=offset, limit=limit)

    async def sessions(self, user_id: str, *, offset: int, limit: int) -> list[PracticeSession]:
        """A page of the user's practice sessions, oldest first."""
        async with self.uploads.database() as db:
            return await db.sessions.of_user(user_id, offset=offset, limit=limit)

    async def video(self, user_id: str, video_id: uuid.UUID) -> Video:
        async with self.uploads.database() as db:
            video = await db.videos.by_id(video_id)
        if video is None or video.concat == "partial":
            raise ServiceError(ERR_VIDEO_NOT_FOUND)
        if video.user_id != user_id:
            raise ERR_FORBIDDEN.with_message("this video belongs to another user")
        return video

    async def complete(self, user_id: str, upload_id: str) -> Video:
        """Finalise an upload whose every byte has arrived; repeating it is harmless."""
        video = await self.uploads.get(user_id, upload_id)
        if video.concat == "partial":
            raise ERR_INVALID_CONCAT.with_message(
                "a partial upload is completed by its final upload"
            )
        video = await self.uploads.refresh_final(video)
        video = await self.uploads.ensure_finished(video)
        if not video.upload_completed:
            raise ERR_UPLOAD_INCOMPLETE.with_message(
                f"upload has {video.upload_offset} of {video.upload_length} bytes",
                offset=video.upload_offset,
                size=video.upload_length,
            )
        if video.status == "rejected":
            await self._free_storage(video)
            raise _rejection(video)
        if video.status != "completed":
            video = await self._accept(video)
        return video

    async def _accept(self, video: Video) -> Video:
        """Probe a finished upload (once), then record it as a video or reject it."""
        if not self.uploads.settings.video_probe:
            return await self._record(video, {"status": "completed"})
        wait = self.probe_limits.seconds + 10  # a concurrent complete waits for this probe
        async with self.uploads.leases.exclusive(video.upload_id, wait_seconds=wait):
            async with self.uploads.database() as db:
                current = await db.videos.by_upload_id(video.upload_id)
            if current is None:
                raise ServiceError(ERR_UPLOAD_NOT_FOUND)
            if current.status in {"completed", "rejected"}:
                verdict = current
            else:
                verdict = await self._probe(current)
        if verdict.status == "rejected":
            await self._free_storage(verdict)
            raise _rejection(verdict)
        return verdict

    async def _probe(self, video: Video) -> Video:
        store = self.uploads.store
        started = time.perf_counter()
        try:
            facts = await self.uploads.storage_call(
                examine(store, stored(video), video.upload_offset, self.probe_limits)
            )
        except ProbeRejected as rejected:
            metrics.probe_seconds.observe(time.perf_counter() - started)
            kind = REJECTIONS.get(rejected.code, ERR_PROBE_FAILED)
            metrics.probes.labels(kind.code).inc()
            return await self._record(video, _rejected(kind.code, rejected.reason))
        metrics.probe_seconds.observe(time.perf_counter() - started)
        values = _facts(facts, video.declared_duration_seconds)
        limit = self.uploads.settings.max_duration_seconds
        if facts.duration_seconds > limit + DURATION_GRACE_SECONDS:
            reason = (
                f"the video lasts {facts.duration_seconds:.1f} s, "
                f"longer than the {limit:g} s allowed"
            )
            metrics.probes.labels(ERR_VIDEO_TOO_LONG.code).inc()
            return await self._record(
                video, {**values, **_rejected(ERR_VIDEO_TOO_LONG.code, reason)}
            )
        metrics.probes.labels("accepted").inc()
        values["has_thumbnail"] = await self._keep_thumbnail(video, facts)
        return await self._record(video, {**values, "status": "completed"})

    async def _keep_thumbnail(self, video: Video, facts: VideoFacts) -> bool:
        store = self.uploads.store
        if facts.thumbnail is None or not isinstance(store, SidecarStore):
            return False
        try:
            await store.put_sidecar(video.storage_key, THUMBNAIL_NAME, facts.thumbnail)
        except StorageError as error:  # a video without a thumbnail is still a video
            log.warning("could not store the thumbnail of %s: %s", video.upload_id, error)
            return False
        return True

    async def _record(self, video: Video, values: dict[str, Any]) -> Video:
        now = self.uploads.clock()
        values = {**values, "updated_at": now}
        if values.get("status") == "completed":
            values["completed_at"] = now
        verdict = values.get("status")
        async with self.uploads.database() as db:
            if verdict in FINAL_VERDICTS:
                # once only, though two requests may complete the same upload at once
                changed = await db.videos.settle(video.upload_id, values, unless=FINAL_VERDICTS)
            else:
                await db.videos.update(video.upload_id, values)
                changed = False
            video.update(values)
            if changed:
                event = COMPLETED if verdict == "completed" else REJECTED
                await self.uploads.events.record(db, event, video)
            await db.commit()
        if changed:
            self.uploads.events_committed()
        return video

    async def _free_storage(self, video: Video) -> None:
        """Delete a rejected video's bytes (idempotent; a failure is a retryable 503)."""
        await self.uploads.storage_call(self.uploads.store.terminate(stored(video)))

    async def thumbnail(self, user_id: str, video_id: uuid.UUID) -> bytes:
        """The JPEG thumbnail of one of the user's videos."""
        video = await self.video(user_id, video_id)
        store = self.uploads.store
        if not video.has_thumbnail or video.status != "completed":
            raise ServiceError(ERR_THUMBNAIL_NOT_FOUND)
        if not isinstance(store, SidecarStore):
            raise ServiceError(ERR_THUMBNAIL_NOT_FOUND)
        data = await self.uploads.storage_call(
            store.read_sidecar(video.storage_key, THUMBNAIL_NAME)
        )
        if data is None:
            raise ServiceError(ERR_THUMBNAIL_NOT_FOUND)
        return data

    async def content(
        self, user_id: str, video_id: uuid.UUID, byte_range: ByteRange | None
    ) -> Content:
        video = await self.video(user_id, video_id)
        if video.status == "rejected":
            raise ERR_VIDEO_NOT_FOUND.with_message("video was rejected; its bytes are gone")
        if not video.upload_completed or video.status not in {"uploaded", "completed"}:
            raise ERR_VIDEO_NOT_FOUND.with_message("video has no content yet")
        size = video.upload_offset
        chosen = byte_range or ByteRange(0, size - 1)
        return Content(video, chosen, self.uploads.store.read(stored(video), chosen))


def _facts(facts: VideoFacts, declared: float | None) -> dict[str, Any]:
    """The columns a probe fills in, whatever the verdict on the duration."""
    mismatch = None
    if declared is not None:
        tolerance = max(MISMATCH_SECONDS, MISMATCH_SHARE * facts.duration_seconds)
        mismatch = abs(facts.duration_seconds - declared) > tolerance
    return {
        "duration_seconds": round(facts.duration_seconds, 3),
        "container_format": facts.container[:64],
        "video_codec": facts.video_codec[:32],
        "audio_codec": facts.audio_codec[:32] if facts.audio_codec else None,
        "width": facts.width,
        "height": facts.height,
        "frame_rate": facts.frame_rate,
        "duration_mismatch": mismatch,
    }


def _rejected(code: str, reason: str) -> dict[str, Any]:
    return {"status": "rejected", "rejection_code": code, "rejection_reason": reason[:500]}


def _rejection(video: Video) -> ServiceError:
    """The 422 a rejected video answers, the first time and every time after."""
    kind = REJECTIONS.get(video.rejection_code or "", ERR_PROBE_FAILED)
    return kind.with_message(video.rejection_reason or kind.message, video_id=str(video.id))
