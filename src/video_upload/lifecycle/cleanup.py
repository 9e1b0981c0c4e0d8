"""Expiry cleanup: free the storage of expired uploads and collect orphaned storage.

An incomplete upload expires `UPLOAD_EXPIRATION_HOURS` after its last activity (every PATCH
moves `upload_expires_at` forward; an expired upload already answers 410). This module is what
actually frees what such an upload holds, and is the maintenance interface the API documentation
promises as `VideoService(db).cleanup_expired_uploads()`.

Rules:

- Only incomplete uploads whose `upload_expires_at` has passed are cleaned; partial uploads and
  unfinished final uploads alike. Completed uploads are never touched.
- The row is kept, marked `status="expired"`, so later requests for it still get 410 rather than
  404; its storage is freed with `store.terminate` (S3: abort the multipart upload and delete the
  staged objects; local: delete the file).
- Never while someone writes: within this process the upload's lock (`UploadLocks.hold`) is
  taken without waiting, and a busy upload is skipped this round. Across processes and nodes
  each row is claimed with one conditional UPDATE (`VideoRepository.claim_expired` in
  `persistence.repository`): it succeeds only if the row still has the status and offset the
  cleaner read, is still incomplete, is still expired at the cleaner's `now`, and no live writer
  lease is held on it. Of several cleaners
  exactly one wins; a writer that committed meanwhile (moving the offset or expiry) or that is
  writing right now (holding its lease) makes the claim fail, and the upload lives on.
- Rows are read in pages of `batch_size`, ordered by `(upload_expires_at, upload_id)` with
  keyset pagination, so any number of expired rows is processed in bounded memory and a skipped
  row is not read again in the same round.
- Direct uploads (`lifecycle.direct`: parts PUT by the client to presigned S3 URLs) expire
  alike: their expiry moves with each part signed or listing of parts, and `store.terminate`
  aborts their multipart upload, with every part the client sent.
- Orphans: keys the store holds (`OrphanListingStore.list_keys`) that were last written more than
  the expiration period ago and that no live row needs (a crash between creating the storage and
  committing the row, or a cleanup interrupted between its claim and `terminate`: rows marked
  `expired` no longer need their storage, so a failed termination is retried by the next round's
  orphan sweep).

Webhook deliveries (`persistence.outbox`) delivered over `WEBHOOK_RETENTION_DAYS` ago are
deleted in the same round; failed ones stay until an operator retries them.

Several cleaners (the CLI, the in-process periodic task of every worker and node) may run at
the same time; each upload is cleaned exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from video_upload import metrics
from video_upload.config import Settings
from video_upload.domain.errors import ServiceError
from video_upload.domain.events import EXPIRED
from video_upload.domain.records import Video
from video_upload.lifecycle.service import UploadService, stored
from video_upload.persistence.database import Database
from video_upload.storage.base import OrphanListingStore, StorageError, UploadStore
from video_upload.storage.factory import open_store

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_CONCURRENCY = 8
# How long to wait for this process's lock on an upload that nobody seems to hold (it is taken
# at once unless a writer grabbed it in between; then the upload is skipped this round).
LOCK_WAIT_SECONDS = 0.05


@dataclass(frozen=True)
class CleanupReport:
    """What one cleanup round did."""

    expired: int = 0
    """Expired uploads this cleaner claimed, marked `expired` and whose storage it freed."""
    orphans: int = 0
    """Store keys no live row needed, removed."""
    skipped: int = 0
    """Expired uploads left alone: being written, written meanwhile, or claimed by another
    cleaner first. Those still expired are picked up by a later round."""
    failed: int = 0
    """Storage calls that failed (logged); a later round's orphan sweep retries them."""
    expired_ids: tuple[str, ...] = ()
    """The `upload_id`s counted in `expired`."""
    orphan_keys: tuple[str, ...] = ()
    """The storage keys counted in `orphans`."""
    deliveries_pruned: int = 0
    """Webhook deliveries deleted `WEBHOOK_RETENTION_DAYS` after they were delivered."""

    def summary(self) -> str:
        """One line for people, e.g. `cleaned 3 expired uploads, removed 1 orphan`."""
        text = (
            f"cleaned {_plural(self.expired, 'expired upload')}, "
            f"removed {_plural(self.orphans, 'orphan')}"
        )
        extras = []
        if self.skipped:
            extras.append(f"skipped {_plural(self.skipped, 'busy upload')}")
        if self.failed:
            extras.append(f"{_plural(self.failed, 'storage failure')} (retried next round)")
        if self.deliveries_pruned:
            extras.append(f"pruned {_plural(self.deliveries_pruned, 'delivered webhook')}")
        return text + (f" ({', '.join(extras)})" if extras else "")


class _Outcome(Enum):
    CLEANED = "cleaned"
    SKIPPED = "skipped"
    FAILED = "failed"


class HasUploads(Protocol):
    """What a running app's services offer the cleaner."""

    @property
    def uploads(self) -> UploadService: ...


class VideoService:
    """The maintenance interface: `await VideoService(db).cleanup_expired_uploads()`.

    `db` is what a running app already has: its services (`app.state.services`, anything
    with an `uploads` attribute), or the `UploadService` itself; either brings the database,
    the store, the clock, the settings and, importantly, the process's upload locks, so that
    the cleanup never races a request of the same process. Outside an app (a cron job, the
    `video-upload cleanup` command), `async with VideoService.from_settings(settings) as
    service:` builds the database and store from settings and closes them afterwards.

    `batch_size` rows are read per page; up to `concurrency` uploads of a page are cleaned at
    the same time (each costs a few store requests).
    """

    def __init__(
        self,
        db: HasUploads | UploadService,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        if batch_size < 1 or concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        self.uploads: UploadService = db if isinstance(db, UploadService) else db.uploads
        self.store: UploadStore = self.uploads.store
        self.batch_size = batch_size
        self.concurrency = concurrency

    @classmethod
    @asynccontextmanager
    async def from_settings(
        cls,
        settings: Settings,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> AsyncIterator[VideoService]:
        """A cleaner with its own engine and store (closed on exit), for use outside the app."""
        database = Database.open(settings.resolved_database_url, settings.database_max_connections)
        try:
            store = await open_store(settings, database.staging)
            try:
                uploads = UploadService(settings, database, store)
                yield cls(uploads, batch_size=batch_size, concurrency=concurrency)
            finally:
                await store.close()
        finally:
            await database.close()

    # -- the public interface ----------------------------------------------------------------

    async def cleanup_expired_uploads(self) -> int:
        """Run one full cleanup round (expired uploads, then orphans).

        Returns the number of expired uploads cleaned by this call; `cleanup()` gives the whole
        report, orphans included.
        """
        return (await self.cleanup()).expired

    async def cleanup(self) -> CleanupReport:
        """Clean expired uploads, remove orphaned storage, prune old webhook deliveries; report.

        Database failures propagate (as `ServiceError`); storage failures of single uploads are
        logged, counted in `failed`, and retried by a later round.
        """
        expired = await self.expire_uploads()
        orphans = await self.remove_orphans()
        pruned = await self.prune_deliveries()
        report = CleanupReport(
            expired=expired.expired,
            orphans=orphans.orphans,
            skipped=expired.skipped,
            failed=expired.failed + orphans.failed,
            expired_ids=expired.expired_ids,
            orphan_keys=orphans.orphan_keys,
            deliveries_pruned=pruned,
        )
        metrics.cleanup_runs.inc()
        metrics.cleanup_removed.labels("expired").inc(report.expired)
        metrics.cleanup_removed.labels("orphan").inc(report.orphans)
        if report.expired or report.orphans or report.failed or report.deliveries_pruned:
            log.info("cleanup: %s", report.summary())
        return report

    async def expire_uploads(self) -> CleanupReport:
        """Clean every upload that had expired when the round started (no orphan sweep)."""
        now = self.uploads.clock()
        cleaned: list[str] = []
        skipped = failed = 0
        after: tuple[datetime, str] | None = None
        while True:
            async with self.uploads.database() as db:
                page = await db.videos.expired_page(now, self.batch_size, after)
            if not page:
                break
            for upload_id, outcome in await self._expire_page(page, now):
                if outcome is _Outcome.CLEANED:
                    cleaned.append(upload_id)
                elif outcome is _Outcome.SKIPPED:
                    skipped += 1
                else:
                    failed += 1
            last = page[-1]
            assert last.upload_expires_at is not None  # the query only returns expiring rows
            after = (last.upload_expires_at, last.upload_id)
            if len(page) < self.batch_size:
                break
        return CleanupReport(
            expired=len(cleaned), skipped=skipped, failed=failed, expired_ids=tuple(cleaned)
        )

    async def prune_deliveries(self) -> int:
        """Delete webhook deliveries delivered over `WEBHOOK_RETENTION_DAYS` ago (the outbox
        would otherwise keep every event for good); failed ones stay for an operator."""
        retention = timedelta(days=self.uploads.settings.webhook_retention_days)
        async with self.uploads.database() as db:
            pruned = await db.outbox.prune_delivered(self.uploads.clock() - retention)
            await db.commit()
        return pruned

    async def remove_orphans(self) -> CleanupReport:
        """Remove store keys last written over the expiration period ago that no live row needs.

        Does nothing for a store that cannot list its keys.
        """
        store = self.store
        if not isinstance(store, OrphanListingStore):
            return CleanupReport()
        expiration = timedelta(hours=self.uploads.settings.upload_expiration_hours)
        try:
            keys = await store.list_keys(older_than=self.uploads.clock() - expiration)
        except StorageError as error:
            log.warning("cleanup: cannot list the store's keys: %s", error)
            return CleanupReport(failed=1)
        removed: list[str] = []
        failed = 0
        for first in range(0, len(keys), self.batch_size):
            batch = keys[first : first + self.batch_size]
            async with self.uploads.database() as db:
                live = await db.videos.live_storage_keys(batch)
            for key in batch:
                if key in live:
                    continue
                try:
                    await store.remove_key(key)
                except StorageError as error:
                    log.warning("cleanup: cannot remove orphaned storage %s: %s", key, error)
                    failed += 1
                    continue
                removed.append(key)
        return CleanupReport(orphans=len(removed), failed=failed, orphan_keys=tuple(removed))

    # -- one page, one upload ----------------------------------------------------------------

    async def _expire_page(self, page: list[Video], now: datetime) -> list[tuple[str, _Outcome]]:
        """Clean the uploads of one page, `concurrency` at a time; the first error propagates."""
        rows = iter(page)
        outcomes: list[tuple[str, _Outcome]] = []
        errors: list[Exception] = []

        async def worker() -> None:
            for video in rows:  # shared by the workers: each row is taken by one of them
                if errors:
                    return
                try:
                    outcomes.append((video.upload_id, await self._expire(video, now)))
                except Exception as error:  # re-raised below, once the other workers stop
                    errors.append(error)
                    return

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(page)))))
        if errors:
            raise errors[0]
        return outcomes

    async def _expire(self, video: Video, now: datetime) -> _Outcome:
        """Claim one expired upload and free its storage, unless someone is writing to it."""
        locks = self.uploads.locks
        if locks.is_held(video.upload_id):
            return _Outcome.SKIPPED  # a request of this process is writing to it
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(
                    locks.hold(video.upload_id, wait_seconds=LOCK_WAIT_SECONDS)
                )
            except ServiceError as error:
                if error.kind.status != 423:
                    raise
                return _Outcome.SKIPPED
            async with self.uploads.database() as db:
                claimed = await db.videos.claim_expired(
                    video.upload_id, status=video.status, offset=video.upload_offset, now=now
                )
                if claimed and video.concat != "partial":
                    video.update({"status": "expired", "updated_at": now})
                    await self.uploads.events.record(db, EXPIRED, video)
                await db.commit()
            if claimed:
                self.uploads.events_committed()
            if not claimed:
                return _Outcome.SKIPPED
            try:
                await self.store.terminate(stored(video))
            except StorageError as error:
                log.warning(
                    "cleanup: upload %s expired but its storage could not be freed (retried "
                    "by the next orphan sweep): %s",
                    video.upload_id,
                    error,
                )
                return _Outcome.FAILED
        return _Outcome.CLEANED


async def cleanup_once(settings: Settings) -> CleanupReport:
    """One cleanup round with an engine and store of its own (what the CLI runs)."""
    async with VideoService.from_settings(settings) as service:
        return await service.cleanup()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
