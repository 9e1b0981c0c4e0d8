"""What an operator does with webhook deliveries by hand: list them, send failed ones again
(`video-upload webhooks list` and `webhooks retry`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from video_upload.config import Settings
from video_upload.domain.events import Delivery
from video_upload.persistence.database import Database


async def list_deliveries(settings: Settings, status: str | None, limit: int) -> list[Delivery]:
    database = Database.open(settings.resolved_database_url, settings.database_max_connections)
    try:
        async with database.transaction() as db:
            return await db.outbox.listed(status, limit)
    finally:
        await database.close()


async def retry_failed(settings: Settings, seqs: Sequence[int] | None) -> int:
    """Make failed deliveries (those numbered `seqs`, or all) pending again; how many."""
    database = Database.open(settings.resolved_database_url, settings.database_max_connections)
    try:
        async with database.transaction() as db:
            count = await db.outbox.retry(seqs, datetime.now(UTC))
            await db.commit()
            return count
    finally:
        await database.close()
