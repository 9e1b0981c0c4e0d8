"""The two statements of every PATCH (take the writer lease, commit the new offset), the read of
every HEAD (the upload's row), giving a lease back and sealing a completed upload.

They run directly on the driver (see `persistence.direct`): through an ORM session they cost
more CPU than everything else the service does for a chunk. The two of a PATCH are conditional
UPDATEs, so they keep their guarantees whichever process or node runs them:

- taking the lease succeeds only when nobody holds it (or its holder's lease ran out), and
  returns the upload's row, so a writer needs no second read;
- committing succeeds only when the upload still stands at the offset the write started from,
  has not been expired by a cleaner, and is still leased to the writer (fencing: a writer whose
  lease was taken over cannot commit). It can give the lease back in the same statement.

The SQL is the same on SQLite and PostgreSQL (`TRUE` and `FALSE` are SQLite's 1 and 0, what
SQLAlchemy stores for a boolean there); each parameter and returned column is converted by the
codec of its column's type (`persistence.column_codecs`), read from the ORM's table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table

from video_upload.domain.records import VIDEO_FIELDS, Progress, Video
from video_upload.persistence.column_codecs import Kind, kinds_of
from video_upload.persistence.direct import ChunkDriver, Prepared, Statement, run_statement
from video_upload.persistence.models import VideoRow

_videos = cast(Table, VideoRow.__table__)


def _kinds(*columns: str) -> tuple[Kind, ...]:
    """The codec kinds of `columns` of the videos table, in order."""
    return kinds_of(_videos, *columns)


# Every column, in the order of `Video`'s fields: a returned row is the record's arguments.
_ALL_COLUMNS = ", ".join(VIDEO_FIELDS)
_ROW = _kinds(*VIDEO_FIELDS)
_UPLOAD_ID = _kinds("upload_id")

READ = Statement(
    f"SELECT {_ALL_COLUMNS} FROM videos WHERE upload_id = $1",
    parameters=_UPLOAD_ID,
    returns=_ROW,
)

# $1 upload, $2 new owner, $3 now, $4 until
TAKE_LEASE = Statement(
    "UPDATE videos SET lock_owner = $2, lock_expires_at = $4, lock_stop_requested = FALSE"
    " WHERE upload_id = $1 AND (lock_owner IS NULL OR lock_expires_at < $3)"
    f" RETURNING {_ALL_COLUMNS}",
    parameters=_kinds("upload_id", "lock_owner", "lock_expires_at", "lock_expires_at"),
    returns=_ROW,
)

_LEASE_GIVEN_BACK = "lock_owner = NULL, lock_expires_at = NULL, lock_stop_requested = FALSE"


def advance_statement(*, release_lease: bool, move_expiry: bool) -> Statement:
    """The offset's commit, giving the lease back or not, moving the expiry or not. Leaving
    `upload_expires_at` out of the SET spares SQLite the expiry index's update.

    $1 upload, $2 expected offset, $3 lease owner, $4 new offset, $5 state, $6 length, $7 now,
    and $8 the new expiry when it moves."""
    columns = ["upload_id", "upload_offset", "lock_owner", "upload_offset", "upload_metadata"]
    columns += ["upload_length", "updated_at"]
    changes = "upload_offset = $4, upload_metadata = $5, upload_length = $6"
    changes += ", status = 'uploading', updated_at = $7"
    if move_expiry:
        changes += ", upload_expires_at = $8"
        columns.append("upload_expires_at")
    if release_lease:
        changes += f", {_LEASE_GIVEN_BACK}"
    return Statement(
        f"UPDATE videos SET {changes}"
        " WHERE upload_id = $1 AND upload_offset = $2"
        " AND status <> 'expired'"  # a cleaner expired it; its storage may already be gone
        " AND lock_owner = $3"  # fencing
        " RETURNING upload_id",
        parameters=_kinds(*columns),
        returns=_UPLOAD_ID,
    )


# $1 upload, $2 lease owner
RELEASE = Statement(
    f"UPDATE videos SET {_LEASE_GIVEN_BACK} WHERE upload_id = $1 AND lock_owner = $2"
    " RETURNING upload_id",
    parameters=_kinds("upload_id", "lock_owner"),
    returns=_UPLOAD_ID,
)

# $1 upload, $2 state, $3 expiry, $4 now
FINISH = Statement(
    "UPDATE videos SET upload_metadata = $2, upload_completed = TRUE, upload_expires_at = $3,"
    " status = 'uploaded', updated_at = $4 WHERE upload_id = $1 RETURNING upload_id",
    parameters=_kinds("upload_id", "upload_metadata", "upload_expires_at", "updated_at"),
    returns=_UPLOAD_ID,
)


class ChunkStatements:
    """The statements above, run on `driver`. Sealing a completed upload runs `durable`: its
    commit waits for the disk where the per-chunk ones do not (PostgreSQL, see
    `persistence.postgres_direct`)."""

    def __init__(self, driver: ChunkDriver) -> None:
        self.driver = driver
        self._read = driver.prepare(READ)
        self._take = driver.prepare(TAKE_LEASE)
        self._advances = {
            (release, move): driver.prepare(
                advance_statement(release_lease=release, move_expiry=move)
            )
            for release in (False, True)
            for move in (False, True)
        }
        self._release = driver.prepare(RELEASE)
        self._finish = driver.prepare(FINISH)

    async def read(self, upload_id: str) -> Video | None:
        """The upload as it now stands, or None."""
        rows = await self._run(self._read, (upload_id,))
        return Video(*rows[0]) if rows else None

    async def take_lease(
        self, upload_id: str, owner: str, now: datetime, until: datetime
    ) -> Video | None:
        """Take the lease if it is free or expired: the upload as it now stands, else None."""
        rows = await self._run(self._take, (upload_id, owner, now, until))
        return Video(*rows[0]) if rows else None

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
        values: tuple[Any, ...] = (
            upload_id,
            expected_offset,
            lease_owner,
            progress.offset,
            progress.state,
            progress.length,
            progress.at,
        )
        move_expiry = progress.expires_at is not None
        if move_expiry:
            values += (progress.expires_at,)
        rows = await self._run(self._advances[release_lease, move_expiry], values)
        return len(rows) == 1

    async def release(self, upload_id: str, lease_owner: str) -> bool:
        """Give the lease back if `lease_owner` still holds it; whether it did."""
        rows = await self._run(self._release, (upload_id, lease_owner))
        return len(rows) == 1

    async def finish(
        self,
        upload_id: str,
        *,
        state: dict[str, Any],
        expires_at: datetime | None,
        at: datetime,
    ) -> bool:
        """Mark the upload complete, with the store's final `state`, committed durably.
        Whether the row was there."""
        rows = await self._run(self._finish, (upload_id, state, expires_at, at), durable=True)
        return len(rows) == 1

    async def close(self) -> None:
        """Release the driver's connections."""
        await self.driver.close()

    async def _run(
        self, statement: Prepared, values: Sequence[Any], *, durable: bool = False
    ) -> list[list[Any]]:
        return await run_statement(self.driver, statement, values, durable=durable)
