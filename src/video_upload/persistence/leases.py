"""SQL for writer leases: renew, ask to stop (taking and giving one back are in
`persistence.chunks`; see `lifecycle.leases`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from video_upload.domain.records import LeaseState
from video_upload.persistence.models import VideoRow as Video


class LeaseRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def renew(self, upload_id: str, owner: str, until: datetime) -> LeaseState | None:
        """Extend the lease; None when this owner no longer holds it."""
        result = await self.db.execute(
            update(Video)
            .where(Video.upload_id == upload_id, Video.lock_owner == owner)
            .values(lock_expires_at=until)
            .returning(
                Video.user_id, Video.lock_owner, Video.lock_expires_at, Video.lock_stop_requested
            )
            .execution_options(synchronize_session=False)
        )
        row = result.one_or_none()
        return None if row is None else LeaseState(row[0], row[1], row[2], bool(row[3]))

    async def request_stop(self, upload_id: str) -> None:
        await self.db.execute(
            update(Video)
            .where(Video.upload_id == upload_id, Video.lock_owner.is_not(None))
            .values(lock_stop_requested=True)
            .execution_options(synchronize_session=False)
        )

    async def state(self, upload_id: str) -> LeaseState | None:
        result = await self.db.execute(
            select(
                Video.user_id, Video.lock_owner, Video.lock_expires_at, Video.lock_stop_requested
            ).where(Video.upload_id == upload_id)
        )
        row = result.one_or_none()
        return None if row is None else LeaseState(row[0], row[1], row[2], bool(row[3]))
