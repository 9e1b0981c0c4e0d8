"""The optional in-process cleanup: one cleanup round every `CLEANUP_INTERVAL_MINUTES`.

Off when the interval is 0 (the default), e.g. when a cron job runs `video-upload cleanup`
instead. When on, every worker process of every node runs it; that is safe, because cleanup
claims each upload with a conditional update (see `maintenance.cleanup`). A failing round is
logged and the next one runs on schedule: the task never brings the app down. The app's
lifespan starts it once its services exist and stops it (cancelling a round in progress) on
shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from video_upload.lifecycle.cleanup import CleanupReport, VideoService
from video_upload.lifecycle.service import UploadService

log = logging.getLogger(__name__)


class PeriodicCleanup:
    """Runs `run` every `interval_seconds` (the first round one interval after `start`)."""

    def __init__(self, run: Callable[[], Awaitable[CleanupReport]], interval_seconds: float):
        if interval_seconds < 0:
            raise ValueError("interval_seconds must not be negative")
        self.run = run
        self.interval_seconds = interval_seconds
        self.rounds = 0
        """Rounds finished so far, failed ones included."""
        self.failures = 0
        self.last_report: CleanupReport | None = None
        self._task: asyncio.Task[None] | None = None
        self._finished = asyncio.Condition()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the task on the running loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="periodic-cleanup"
            )

    async def stop(self) -> None:
        """Cancel the task (and any round in progress) and wait until it has ended."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def wait_rounds(self, count: int) -> None:
        """Wait until `count` more rounds have finished (for tests and diagnostics)."""
        target = self.rounds + count
        async with self._finished:
            await self._finished.wait_for(lambda: self.rounds >= target)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                self.last_report = await self.run()
            except Exception:
                self.failures += 1
                log.exception("periodic cleanup failed; trying again in %gs", self.interval_seconds)
            self.rounds += 1
            async with self._finished:
                self._finished.notify_all()


def start_periodic_cleanup(uploads: UploadService) -> PeriodicCleanup | None:
    """Start the periodic cleanup the settings ask for; None when it is off (interval 0)."""
    minutes = uploads.settings.cleanup_interval_minutes
    if minutes <= 0:
        return None
    periodic = PeriodicCleanup(VideoService(uploads).cleanup, interval_seconds=minutes * 60)
    periodic.start()
    log.info("expired-upload cleanup runs every %g minutes", minutes)
    return periodic
