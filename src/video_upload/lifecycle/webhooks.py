"""Sending the outbox's webhook deliveries, signed per the Standard Webhooks specification.

Every node runs a `WebhookDispatcher`: it claims due deliveries from the outbox (safe with any
number of dispatchers, see `persistence.outbox`), POSTs each to its receiver with the
`webhook-id`, `webhook-timestamp` and `webhook-signature` headers, and records the outcome. A 2xx
answer delivers it; anything else (an error status, a refused connection, a timeout) schedules
another try with exponential backoff, until `WEBHOOK_RETRY_HOURS` after the event, when the
delivery is marked failed (`video-upload webhooks list`, `webhooks retry`).

It runs apart from the requests: a slow or dead receiver delays only its own deliveries, and
uploads never wait for it. The event id is the same on every try, so a receiver that sees an
event twice (a dispatcher died between sending and recording) can drop the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks.webhooks import Webhook

from video_upload import metrics
from video_upload.config import Settings
from video_upload.domain.events import Delivery
from video_upload.persistence.database import Database

log = logging.getLogger(__name__)

BATCH = 32  # deliveries claimed at once
CONCURRENCY = 8  # sent at the same time by one dispatcher
FIRST_BACKOFF_SECONDS = 1.0


class WebhookDispatcher:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        clock: Callable[[], datetime],
        *,
        poll_seconds: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.retry_window = timedelta(hours=settings.webhook_retry_hours)
        self.max_backoff = settings.webhook_max_backoff_seconds
        self.claim_for = timedelta(seconds=settings.webhook_timeout_seconds * 2 + 5)
        self.signer = Webhook(settings.webhook_secret.get_secret_value())
        self.client = httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, transport=transport
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        """Look for due deliveries now (an event was just committed here)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.dispatch_once()
            except Exception:  # the database may be down: try again next round
                log.exception("webhook dispatch failed; retrying")
                busy = 0
            if busy < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                self._wake.clear()

    async def dispatch_once(self) -> int:
        """Claim and send one batch of due deliveries; how many were claimed."""
        now = self.clock()
        async with self.database.transaction() as db:
            claimed = await db.outbox.claim(now, now + self.claim_for, BATCH)
            await db.commit()
            metrics.outbox_depth.set(await db.outbox.depth())
        if not claimed:
            return 0
        slots = asyncio.Semaphore(CONCURRENCY)

        async def send(delivery: Delivery) -> None:
            async with slots:
                await self._send(delivery)

        await asyncio.gather(*(send(delivery) for delivery in claimed))
        return len(claimed)

    async def _send(self, delivery: Delivery) -> None:
        error = await self._post(delivery)
        now = self.clock()
        attempts = delivery.attempts + 1
        async with self.database.transaction() as db:
            if error is None:
                await db.outbox.delivered(delivery.seq, now)
                metrics.webhook_deliveries.labels("delivered").inc()
                self.sent += 1
            elif now - delivery.created_at >= self.retry_window:
                log.warning(
                    "webhook %s to %s failed for good after %d attempts: %s",
                    delivery.event_id,
                    delivery.url,
                    attempts,
                    error,
                )
                await db.outbox.failed(delivery.seq, attempts, error)
                metrics.webhook_deliveries.labels("failed").inc()
                self.failed += 1
            else:
                metrics.webhook_deliveries.labels("retry").inc()
                delay = min(FIRST_BACKOFF_SECONDS * 2 ** (attempts - 1), self.max_backoff)
                await db.outbox.retry_later(
                    delivery.seq, now + timedelta(seconds=delay), attempts, error
                )
            await db.commit()

    async def _post(self, delivery: Delivery) -> str | None:
        """Send one delivery; None when the receiver accepted it, else what went wrong."""
        sent_at = datetime.now(UTC)  # wall time: receivers refuse signatures from another time
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": self.signer.sign(delivery.event_id, sent_at, delivery.payload),
        }
        try:
            response = await self.client.post(
                delivery.url, content=delivery.payload.encode(), headers=headers
            )
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"


__all__ = ["WebhookDispatcher"]
