"""The two statements of every PATCH (take the writer lease, commit the new offset) and the read
of every HEAD (the upload's row).

They run directly on the driver (see `persistence.direct`): through an ORM session they cost more CPU than
everything else the service does for a chunk. The two of a PATCH are conditional UPDATEs, so they
keep their guarantees whichever process or node runs them:

- taking the lease succeeds only when nobody holds it (or its holder's lease ran out), and
  returns the upload's row, so a writer needs no second read;
- committing succeeds only when the upload still stands at the offset the write started from,
  has not been expired by a cleaner, and is still leased to the writer (fencing: a writer whose
  lease was taken over cannot commit). It can give the lease back in the same statement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from video_upload.domain.records import Progress, Video
from video_upload.persistence.direct import DirectExecutor, DirectStatement
from video_upload.persistence.errors import raise_if_unavailable
from video_upload.persistence.models import VideoRow
from video_upload.persistence.records import video_from_columns

_videos = cast(Table, VideoRow.__table__)
_ALL_COLUMNS = list(_videos.columns)

_TAKE = (
    update(_videos)
    .where(
        _videos.c.upload_id == bindparam("target_upload_id"),
        or_(_videos.c.lock_owner.is_(None), _videos.c.lock_expires_at < bindparam("now")),
    )
    .values(
        lock_owner=bindparam("new_owner"),
        lock_expires_at=bindparam("until"),
        lock_stop_requested=False,
    )
    .returning(*_ALL_COLUMNS)
)

_READ = select(*_ALL_COLUMNS).where(_videos.c.upload_id == bindparam("target_upload_id"))

_ADVANCE = update(_videos).where(
    _videos.c.upload_id == bindparam("target_upload_id"),
    _videos.c.upload_offset == bindparam("expected_offset"),
    _videos.c.status != "expired",  # a cleaner expired it; its storage may already be gone
    _videos.c.lock_owner == bindparam("lease_owner"),  # fencing
)
_UPLOADING = "uploading"
_PROGRESS = {
    "upload_offset": bindparam("new_offset"),
    "upload_metadata": bindparam("new_state"),
    "upload_length": bindparam("new_length"),
    "status": _UPLOADING,
    "updated_at": bindparam("now"),
}
_EXPIRY_MOVED: dict[str, Any] = {"upload_expires_at": bindparam("new_expires_at")}
_LEASE_GIVEN_BACK: dict[str, Any] = {
    "lock_owner": None,
    "lock_expires_at": None,
    "lock_stop_requested": False,
}


def _advance(*, release_lease: bool, move_expiry: bool) -> Any:
    """The offset's commit, giving the lease back or not, moving the expiry or not. Leaving
    `upload_expires_at` out of the SET spares SQLite the expiry index's update."""
    values = {
        **_PROGRESS,
        **(_EXPIRY_MOVED if move_expiry else {}),
        **(_LEASE_GIVEN_BACK if release_lease else {}),
    }
    return _ADVANCE.values(**values).returning(_videos.c.upload_id)


_FINISH = (
    update(_videos)
    .where(_videos.c.upload_id == bindparam("target_upload_id"))
    .values(
        upload_metadata=bindparam("new_state"),
        upload_completed=True,
        upload_expires_at=bindparam("new_expires_at"),
        status="uploaded",
        updated_at=bindparam("now"),
    )
    .returning(_videos.c.upload_id)
)

_RELEASE = (
    update(_videos)
    .where(
        _videos.c.upload_id == bindparam("target_upload_id"),
        _videos.c.lock_owner == bindparam("lease_owner"),
    )
    .values(**_LEASE_GIVEN_BACK)
    .returning(_videos.c.upload_id)
)


async def _run(
    executor: DirectExecutor, statement: DirectStatement, values: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run a statement; a connection failure becomes the retryable 503."""
    try:
        return await executor.run(statement, values)
    except Exception as error:
        raise_if_unavailable(error)
        raise


class ChunkStatements:
    """The statements above, run directly. The per-chunk ones run on `engine`; sealing a
    completed upload runs on `durable_engine` (by default the same), whose commits wait for the
    disk where the per-chunk engine's do not (PostgreSQL, see `persistence.engine.create_chunk_engine`)."""

    def __init__(self, engine: AsyncEngine, durable_engine: AsyncEngine | None = None) -> None:
        self._executor = DirectExecutor(engine)
        self._durable = (
            self._executor
            if durable_engine is None or durable_engine is engine
            else DirectExecutor(durable_engine)
        )
        self._read = self._executor.prepare(_READ, _ALL_COLUMNS)
        self._take = self._executor.prepare(_TAKE, _ALL_COLUMNS)
        self._advances = {
            (release, move): self._executor.prepare(
                _advance(release_lease=release, move_expiry=move), [_videos.c.upload_id]
            )
            for release in (False, True)
            for move in (False, True)
        }
        self._release = self._executor.prepare(_RELEASE, [_videos.c.upload_id])
        self._finish = self._durable.prepare(_FINISH, [_videos.c.upload_id])

    async def read(self, upload_id: str) -> Video | None:
        """The upload as it now stands, or None."""
        rows = await _run(self._executor, self._read, {"target_upload_id": upload_id})
        return video_from_columns(rows[0]) if rows else None

    async def take_lease(
        self, upload_id: str, owner: str, now: datetime, until: datetime
    ) -> Video | None:
        """Take the lease if it is free or expired: the upload as it now stands, else None."""
        rows = await _run(
            self._executor,
            self._take,
            {"target_upload_id": upload_id, "now": now, "new_owner": owner, "until": until},
        )
        return video_from_columns(rows[0]) if rows else None

    async def advance(
        self,
        upload_id: str,
        *,
        expected_offset: int,
        lease_owner: str,
        progress: Progress,
        release_lease: bool,
    ) -> bool:
        """Record `progress` if the upload still stands at `expected_offset`, has not expired
        and is leased to `lease_owner`; with `release_lease`, give the lease back too."""
        move_expiry = progress.expires_at is not None
        values = {
            "target_upload_id": upload_id,
            "expected_offset": expected_offset,
            "lease_owner": lease_owner,
            "new_offset": progress.offset,
            "new_state": progress.state,
            "new_length": progress.length,
            "now": progress.at,
        }
        if move_expiry:
            values["new_expires_at"] = progress.expires_at
        rows = await _run(self._executor, self._advances[release_lease, move_expiry], values)
        return len(rows) == 1

    async def release(self, upload_id: str, lease_owner: str) -> bool:
        """Give the lease back if `lease_owner` still holds it; whether it did."""
        rows = await _run(
            self._executor,
            self._release,
            {"target_upload_id": upload_id, "lease_owner": lease_owner},
        )
        return len(rows) == 1

    async def finish(
        self,
        upload_id: str,
        *,
        state: dict[str, Any],
        expires_at: datetime | None,
        at: datetime,
    ) -> bool:
        """Mark the upload complete, with the store's final `state`, on the durable engine.
        Whether the row was there."""
        rows = await _run(
            self._durable,
            self._finish,
            {
                "target_upload_id": upload_id,
                "new_state": state,
                "new_expires_at": expires_at,
                "now": at,
            },
        )
        return len(rows) == 1

    async def close(self) -> None:
        """Release what running the statements holds (SQLite: the inline connection)."""
        await self._executor.close()
        if self._durable is not self._executor:
            await self._durable.close()
