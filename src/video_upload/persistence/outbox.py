"""The webhook outbox: events written with the change they report, claimed by dispatchers.

`add` runs inside the caller's transaction, so an event exists exactly when the change it
reports was committed: a crash can neither lose one nor leave one behind for a change that
rolled back.

Dispatchers on any number of nodes claim due deliveries for a short lease (`claim`): on
PostgreSQL with `SELECT ... FOR UPDATE SKIP LOCKED`, so two dispatchers never even wait for each
other; on SQLite, whose writers take turns anyway, with a conditional UPDATE per row that only
one of them can win. A delivery is due when its time has come and no earlier delivery of the
same upload to the same URL is still pending, which keeps each upload's events in order per
receiver. A dispatcher that dies with a claim only delays those deliveries until the claim runs
out; the receiver may then see an event twice, with the same id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from video_upload.domain.events import DELIVERED, FAILED, PENDING, Delivery, Event
from video_upload.persistence.models import WebhookDeliveryRow as Row

_earlier = aliased(Row)


def _delivery(row: Row) -> Delivery:
    return Delivery(
        seq=row.seq,
        event_id=row.event_id,
        event_type=row.event_type,
        upload_id=row.upload_id,
        url=row.url,
        payload=row.payload,
        created_at=row.created_at,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


class OutboxRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, event: Event, urls: Sequence[str]) -> None:
        """Queue `event` for every receiver, in the caller's transaction."""
        for url in urls:
            self.db.add(
                Row(
                    event_id=event.id,
                    event_type=event.type,
                    upload_id=event.upload_id,
                    url=url,
                    payload=event.payload,
                    created_at=event.created_at,
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=event.created_at,
                )
            )
        await self.db.flush()

    async def claim(self, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        """Take up to `limit` due deliveries until `until`; commit to make the claim count."""
        earlier_pending = exists().where(
            _earlier.upload_id == Row.upload_id,
            _earlier.url == Row.url,
            _earlier.status == PENDING,
            _earlier.seq < Row.seq,
        )
        due = (
            select(Row)
            .where(
                Row.status == PENDING,
                Row.next_attempt_at <= now,
                (Row.claimed_until.is_(None)) | (Row.claimed_until < now),
                ~earlier_pending,
            )
            .order_by(Row.seq)
            .limit(limit)
        )
        if self.db.get_bind().dialect.name == "postgresql":
            rows = list((await self.db.execute(due.with_for_update(skip_locked=True))).scalars())
            if rows:
                await self.db.execute(
                    update(Row)
                    .where(Row.seq.in_([row.seq for row in rows]))
                    .values(claimed_until=until)
                    .execution_options(synchronize_session=False)
                )
            return [_delivery(row) for row in rows]
        claimed = []
        for row in (await self.db.execute(due)).scalars():
            result = await self.db.execute(
                update(Row)
                .where(
                    Row.seq == row.seq,
                    Row.status == PENDING,
                    (Row.claimed_until.is_(None)) | (Row.claimed_until < now),
                )
                .values(claimed_until=until)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                claimed.append(_delivery(row))
        return claimed

    async def delivered(self, seq: int, now: datetime) -> None:
        await self._set(seq, status=DELIVERED, delivered_at=now, claimed_until=None)

    async def retry_later(self, seq: int, at: datetime, attempts: int, error: str) -> None:
        await self._set(
            seq, attempts=attempts, next_attempt_at=at, last_error=error[:500], claimed_until=None
        )

    async def failed(self, seq: int, attempts: int, error: str) -> None:
        await self._set(
            seq, status=FAILED, attempts=attempts, last_error=error[:500], claimed_until=None
        )

    async def listed(self, status: str | None, limit: int) -> list[Delivery]:
        """The latest deliveries (of one status, or all), newest first."""
        query = select(Row).order_by(Row.seq.desc()).limit(limit)
        if status is not None:
            query = query.where(Row.status == status)
        return [_delivery(row) for row in (await self.db.execute(query)).scalars()]

    async def retry(self, seqs: Sequence[int] | None, now: datetime) -> int:
        """Send failed deliveries again (those numbered `seqs`, or every failed one)."""
        query = update(Row).where(Row.status == FAILED)
        if seqs is not None:
            query = query.where(Row.seq.in_(list(seqs)))
        result = await self.db.execute(
            query.values(
                status=PENDING, attempts=0, next_attempt_at=now, claimed_until=None
            ).execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))

    async def prune_delivered(self, before: datetime) -> int:
        """Delete the deliveries delivered before `before`; how many."""
        result = await self.db.execute(
            delete(Row)
            .where(Row.status == DELIVERED, Row.delivered_at < before)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))

    async def depth(self) -> int:
        """Deliveries still pending."""
        result = await self.db.execute(
            select(func.count()).select_from(Row).where(Row.status == PENDING)
        )
        return int(result.scalar_one())

    async def _set(self, seq: int, **values: object) -> None:
        await self.db.execute(
            update(Row)
            .where(and_(Row.seq == seq))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
