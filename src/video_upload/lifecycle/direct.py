"""Direct uploads: the client sends a video's parts straight to S3, the service keeps the rules.

The routes are those of Uppy Companion's S3 multipart API (`http.rest.direct`); each step here:

- create: the checks of `upload/init` (session ownership, a positive file size within
  MAX_VIDEO_SIZE_MB, a declared duration within MAX_VIDEO_DURATION_MINUTES, a video type, the
  per-user limits), then CreateMultipartUpload under a key the service chooses (its upload id
  under the store's prefix, never the client's file name), and a row like any upload's
  (`pending`, the `video.upload_created` event in the same transaction).
- sign: a presigned UploadPart URL for part n of N = ceil(file size / part size), valid for
  SIGNED_URL_SECONDS and signed with that part's exact length, so that no one can put into S3
  more than the declared size.
- list: the parts S3 holds, one per number, so an interrupted client sends only those missing.
- complete: under the upload's writer lease, the service lists the parts itself; every part 1..N
  must be there with its exact length, so that their total is the declared size (else 409 and
  nothing is completed). The client's ETags only choose among versions of a part that S3 keeps
  and are checked against them. Then CompleteMultipartUpload, and the row is sealed like a tus
  upload whose last byte arrived; `VideoCatalog.complete` probes it like any upload (422 for a
  non-video or an over-long video, whose storage is freed).
- abort: `UploadService.terminate`, which aborts the multipart upload and removes the row.

The part size is the store's S3_PART_SIZE, or ceil(size / 10,000) for a file that would need
more parts (as Uppy computes its chunks); it is kept in the upload's state. Like a tus upload, a
direct upload expires UPLOAD_EXPIRATION_HOURS after its last activity (creating it, signing a
part, listing its parts), and the expiry cleanup then aborts its multipart upload with
`store.terminate`, as for any expired upload. tus writes to it are refused by the store.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from video_upload import metrics
from video_upload.domain.errors import (
    ERR_DIRECT_UNAVAILABLE,
    ERR_INVALID_PART_NUMBER,
    ERR_KEY_MISMATCH,
    ERR_NOT_DIRECT,
    ERR_PART_MISMATCH,
    ERR_PARTS_INCOMPLETE,
    ERR_UPLOAD_FINISHED,
    ERR_UPLOAD_GONE,
    ServiceError,
)
from video_upload.domain.events import UPLOAD_CREATED
from video_upload.domain.records import Video
from video_upload.lifecycle.catalog import VideoCatalog
from video_upload.lifecycle.media import display_name, video_content_type
from video_upload.lifecycle.quotas import check_quota
from video_upload.lifecycle.records import new_upload_row
from video_upload.lifecycle.service import UploadService, stored
from video_upload.storage.direct import (
    DirectUploadStore,
    ListedPart,
    finished_state,
    is_direct,
)
from video_upload.storage.s3_parts import MAX_PARTS

SIGNED_URL_SECONDS = 15 * 60
# Statuses a direct upload's activity never changes back to `uploading`.
SETTLED = ("uploaded", "completed", "rejected", "expired")


@dataclass(frozen=True)
class DirectRequest:
    """What a client declares when it creates a direct upload."""

    session_id: str
    filename: str
    content_type: str | None
    file_size: int
    duration_seconds: float


@dataclass(frozen=True)
class DirectUpload:
    """A created direct upload: its row, its object's key and how it is cut into parts."""

    video: Video
    key: str
    part_size: int
    part_count: int


@dataclass(frozen=True)
class SignedPart:
    url: str
    expires_seconds: int
    number: int
    size: int


@dataclass(frozen=True)
class ClaimedPart:
    """A part as the client says it uploaded it, at completion."""

    number: int
    etag: str


def part_size_for(size: int, minimum: int) -> int:
    """The part size of a file of `size` bytes: `minimum`, unless that needs over 10,000 parts."""
    return max(minimum, -(-size // MAX_PARTS))


def part_count(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


def expected_size(number: int, size: int, part_size: int) -> int:
    """How many bytes part `number` (1-based) of a `size`-byte file holds."""
    if number < part_count(size, part_size):
        return part_size
    return size - part_size * (part_count(size, part_size) - 1)


def newest_versions(listed: Sequence[ListedPart]) -> list[ListedPart]:
    """One part per number, in order: the newest version of each (the last listed of equals)."""
    newest: dict[int, ListedPart] = {}
    for part in listed:
        held = newest.get(part.number)
        if held is None or _newer_or_same(part, held):
            newest[part.number] = part
    return [newest[number] for number in sorted(newest)]


def choose_parts(
    listed: Sequence[ListedPart], claimed: Sequence[ClaimedPart], size: int, part_size: int
) -> list[ListedPart]:
    """The parts 1..N that make the declared file, or the 409 saying why they do not.

    A part the client names (by ETag) must be a version S3 holds; otherwise the newest version
    is taken. Each must have exactly its expected length, so the total is the declared size.
    """
    count = part_count(size, part_size)
    named = {part.number: _etag(part.etag) for part in claimed}
    outside = sorted(number for number in named if not 1 <= number <= count)
    if outside:
        raise ERR_INVALID_PART_NUMBER.with_message(
            f"this upload has parts 1 to {count}; the client named part {outside[0]}",
            part_count=count,
        )
    versions: dict[int, list[ListedPart]] = {}
    for part in listed:
        versions.setdefault(part.number, []).append(part)
    chosen: list[ListedPart] = []
    missing: list[int] = []
    wrong_size: list[int] = []
    mismatched: list[int] = []
    for number in range(1, count + 1):
        candidates = versions.get(number, [])
        wanted = named.get(number)
        if wanted is not None:
            candidates = [part for part in candidates if _etag(part.etag) == wanted]
            if not candidates and number in versions:
                mismatched.append(number)
                continue
        if not candidates:
            missing.append(number)
            continue
        part = newest_versions(candidates)[0]
        if part.size != expected_size(number, size, part_size):
            wrong_size.append(number)
            continue
        chosen.append(part)
    if mismatched:
        raise ERR_PART_MISMATCH.with_message(
            f"S3 holds other versions of part(s) {_numbers(mismatched)} than the ETags sent",
            parts=mismatched,
        )
    if missing or wrong_size:
        held = sum(part.size for part in newest_versions(listed) if 1 <= part.number <= count)
        raise ERR_PARTS_INCOMPLETE.with_message(
            f"S3 holds {held} of the declared {size} bytes"
            + (f"; missing part(s) {_numbers(missing)}" if missing else "")
            + (f"; part(s) {_numbers(wrong_size)} of the wrong length" if wrong_size else ""),
            size=size,
            held=held,
            missing=missing,
            wrong_size=wrong_size,
            part_count=count,
            part_size=part_size,
        )
    assert sum(part.size for part in chosen) == size
    return chosen


class DirectUploads:
    def __init__(self, uploads: UploadService, catalog: VideoCatalog | None = None) -> None:
        self.uploads = uploads
        self.catalog = catalog or VideoCatalog(uploads)

    def store(self) -> DirectUploadStore:
        """The store, if it takes direct uploads (S3); else 404 `direct_uploads_unavailable`."""
        store = self.uploads.store
        if not isinstance(store, DirectUploadStore):
            raise ServiceError(ERR_DIRECT_UNAVAILABLE)
        return store

    async def create(self, user_id: str, request: DirectRequest) -> DirectUpload:
        store = self.store()
        service = self.uploads
        self._check_declared(request)
        content_type = video_content_type(
            request.content_type, display_name(request.filename, limit=None), required=True
        )
        part_size = part_size_for(request.file_size, store.part_size)
        upload_id = secrets.token_hex(16)
        async with service.database() as db:
            await check_quota(db, service.settings, user_id, request.file_size, service.clock())
            session_id = await service.owned_session(db, user_id, request.session_id)
            state = await service.storage_call(store.create_direct(upload_id, part_size))
            video = new_upload_row(
                now=service.clock(),
                expires_at=service.next_expiry(),
                user_id=user_id,
                upload_id=upload_id,
                session_id=session_id,
                length=request.file_size,
                state=state,
                tus_metadata=None,
                concat=None,
                filename=display_name(request.filename),
                content_type=content_type,
                declared_duration_seconds=request.duration_seconds,
            )
            await db.videos.add(video)
            await service.events.record(db, UPLOAD_CREATED, video)
            await db.commit()
        metrics.uploads_created.inc()
        service.events_committed()
        count = part_count(request.file_size, part_size)
        return DirectUpload(video, store.object_key(stored(video)), part_size, count)

    async def sign_part(self, user_id: str, upload_id: str, key: str, number: int) -> SignedPart:
        store, video = await self._direct(user_id, upload_id, key)
        size, part_size = self._sizes(video, store)
        count = part_count(size, part_size)
        if not 1 <= number <= count:
            raise ERR_INVALID_PART_NUMBER.with_message(
                f"this upload's {size} bytes make parts 1 to {count} of {part_size} bytes",
                part_count=count,
            )
        length = expected_size(number, size, part_size)
        url = await self.uploads.storage_call(
            store.sign_part(stored(video), number, length, SIGNED_URL_SECONDS)
        )
        await self._touch(video)
        return SignedPart(url, SIGNED_URL_SECONDS, number, length)

    async def parts(self, user_id: str, upload_id: str, key: str) -> list[ListedPart]:
        store, video = await self._direct(user_id, upload_id, key)
        listed = await self.uploads.storage_call(store.list_parts(stored(video)))
        if listed is None:
            raise ERR_UPLOAD_GONE.with_message("S3 no longer holds this upload's parts")
        await self._touch(video)
        return newest_versions(listed)

    async def complete(
        self, user_id: str, upload_id: str, key: str, claimed: Sequence[ClaimedPart]
    ) -> Video:
        """Join the parts and probe the video; repeating it gives the same answer."""
        store, video = await self._direct(user_id, upload_id, key, finished_ok=True)
        if not video.upload_completed:
            async with self.uploads.leases.exclusive(upload_id, user_id=user_id) as lease:
                current = self.uploads.check_owned(lease.video, user_id)
                if not current.upload_completed:
                    await self._seal(store, current, claimed)
        return await self.catalog.complete(user_id, upload_id)

    async def abort(self, user_id: str, upload_id: str, key: str) -> None:
        await self._direct(user_id, upload_id, key)
        await self.uploads.terminate(user_id, upload_id)

    # -- helpers -------------------------------------------------------------------------

    def _check_declared(self, request: DirectRequest) -> None:
        self.uploads.check_declared_video(request.file_size, request.duration_seconds)

    async def _direct(
        self, user_id: str, upload_id: str, key: str, *, finished_ok: bool = False
    ) -> tuple[DirectUploadStore, Video]:
        """The caller's unexpired direct upload named by `upload_id` and `key`."""
        store = self.store()
        video = await self.uploads.get(user_id, upload_id)
        if not is_direct(video.upload_metadata):
            raise ServiceError(ERR_NOT_DIRECT)
        if key != store.object_key(stored(video)):
            raise ServiceError(ERR_KEY_MISMATCH)
        if video.upload_completed and not finished_ok:
            raise ServiceError(ERR_UPLOAD_FINISHED)
        return store, video

    def _sizes(self, video: Video, store: DirectUploadStore) -> tuple[int, int]:
        """The upload's declared size and part size."""
        assert video.upload_length is not None  # declared at creation
        part_size = int(video.upload_metadata.get("part_size") or store.part_size)
        return video.upload_length, part_size

    async def _touch(self, video: Video) -> None:
        """Activity: the upload is `uploading` and its expiry moves on (in steps, as a PATCH
        moves it), unless it was completed or expired meanwhile."""
        service = self.uploads
        expires_at = service.next_expiry()
        current = video.upload_expires_at
        if (
            video.status == "uploading"
            and current is not None
            and expires_at - current < service.expiry_step
        ):
            return
        values: dict[str, Any] = {
            "status": "uploading",
            "upload_expires_at": expires_at,
            "updated_at": service.clock(),
        }
        async with service.database() as db:
            changed = await db.videos.settle(video.upload_id, values, unless=SETTLED)
            await db.commit()
        if changed:
            video.update(values)

    async def _seal(
        self, store: DirectUploadStore, video: Video, claimed: Sequence[ClaimedPart]
    ) -> None:
        """Complete the multipart upload from the parts S3 holds and record it (under the
        upload's lease)."""
        service = self.uploads
        size, part_size = self._sizes(video, store)
        upload = stored(video)
        listed = await service.storage_call(store.list_parts(upload))
        if listed is not None:
            chosen = choose_parts(listed, claimed, size, part_size)
            state = await service.storage_call(store.complete_direct(upload, chosen, size))
        elif await service.storage_call(store.completed_size(upload)) == size:
            # an earlier complete joined the parts and stopped before recording it
            state = finished_state(store.object_key(upload), size)
        else:
            raise ERR_UPLOAD_GONE.with_message(
                "S3 no longer holds this upload's parts; start a new upload"
            )
        now = service.clock()
        values: dict[str, Any] = {
            "upload_offset": size,
            "upload_metadata": state,
            "upload_completed": True,
            "upload_expires_at": None,
            "status": "uploaded",
            "updated_at": now,
        }
        async with service.database() as db:
            await db.videos.update(video.upload_id, values)
            await db.commit()
        video.update(values)
        metrics.uploads_finished.inc()


def _newer_or_same(part: ListedPart, than: ListedPart) -> bool:
    if part.last_modified is None or than.last_modified is None:
        return True
    return part.last_modified >= than.last_modified


def _etag(value: str) -> str:
    return value.strip().strip('"')


def _numbers(numbers: Sequence[int], shown: int = 10) -> str:
    text = ", ".join(str(number) for number in numbers[:shown])
    return text + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")
