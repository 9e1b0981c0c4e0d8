"""Per-user limits: how many unfinished uploads, how many bytes of them, how many bytes of
videos, and how many new uploads a minute one user may have.

Each is off (0) unless configured. They are checked when an upload is created, inside the
creating transaction, after taking the user's lock (PostgreSQL's advisory lock), so two nodes
creating uploads for one user at once cannot both slip under a limit. A refused creation
changes nothing; uploads already made and videos already stored are never touched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from video_upload.config import MIB, Settings
from video_upload.domain.errors import (
    ERR_CREATION_RATE,
    ERR_STORED_QUOTA,
    ERR_TOO_MANY_UNFINISHED,
    ERR_UNFINISHED_QUOTA,
)

if TYPE_CHECKING:
    from video_upload.persistence.database import Transaction

RATE_WINDOW = timedelta(minutes=1)


def limits_enabled(settings: Settings) -> bool:
    return any(
        (
            settings.user_max_unfinished_uploads,
            settings.user_max_unfinished_mb,
            settings.user_max_stored_mb,
            settings.user_max_creations_per_minute,
        )
    )


async def check_quota(
    db: Transaction,
    settings: Settings,
    user_id: str,
    length: int | None,
    now: datetime,
    *,
    creating: bool = True,
) -> None:
    """Raise the limit's error if creating an upload of `length` bytes (None: not declared
    yet) would take `user_id` past one; call it in the creating transaction. With `creating`
    false, `length` is what a deferred length adds to an upload that exists, and only the
    byte limits apply."""
    if not limits_enabled(settings):
        return
    await db.videos.lock_user(user_id)
    usage = await db.videos.usage(user_id, since=now - RATE_WINDOW)
    new_bytes = length or 0
    rate = settings.user_max_creations_per_minute if creating else 0
    if rate and usage.created_last_minute >= rate:
        raise ERR_CREATION_RATE.with_message(
            f"at most {rate} uploads may be started per minute; retry in a minute",
            limit=rate,
        )
    most = settings.user_max_unfinished_uploads if creating else 0
    if most and usage.unfinished_uploads >= most:
        raise ERR_TOO_MANY_UNFINISHED.with_message(
            f"you have {usage.unfinished_uploads} unfinished uploads, the most allowed; "
            "finish or delete one first",
            limit=most,
        )
    unfinished_mb = settings.user_max_unfinished_mb
    if unfinished_mb and usage.unfinished_bytes + new_bytes > unfinished_mb * MIB:
        raise ERR_UNFINISHED_QUOTA.with_message(
            f"your unfinished uploads would hold more than {unfinished_mb} MB",
            limit_mb=unfinished_mb,
        )
    stored_mb = settings.user_max_stored_mb
    if stored_mb and usage.stored_bytes + usage.unfinished_bytes + new_bytes > stored_mb * MIB:
        raise ERR_STORED_QUOTA.with_message(
            f"your videos and uploads would take more than {stored_mb} MB",
            limit_mb=stored_mb,
        )
