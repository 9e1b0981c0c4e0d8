"""Writer exclusion across processes and nodes: a lease row per upload, renewed while writing.

Any node may receive any request, so a request that writes (PATCH, finish, termination,
assembly, cleanup) first takes the in-process lock (`UploadLocks`) and then the upload's lease in
the shared database: `lock_owner` and `lock_expires_at` on the `videos` row, taken with a
conditional UPDATE, renewed every `heartbeat_seconds` while the request runs, cleared when it
ends. A node that dies simply stops renewing; its lease runs out after `lease_seconds` and the
next request takes over. No database connection is held for the length of a slow upload.

A newer request of the owner that finds the lease held sets `lock_stop_requested`; the holder's
heartbeat sees it and, if its client has stalled, stops and saves what it received, so a phone's
retry through another node is served within seconds. A holder whose lease was lost stops at once.

The same SQL runs on SQLite (several worker processes on one machine) and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from video_upload import metrics
from video_upload.domain.errors import (
    ERR_FORBIDDEN,
    ERR_UPLOAD_LOCKED,
    ERR_UPLOAD_NOT_FOUND,
    ServiceError,
)
from video_upload.domain.records import Video
from video_upload.lifecycle.locks import HeldLock, UploadLocks
from video_upload.lifecycle.records import Clock
from video_upload.persistence.database import Database

log = logging.getLogger(__name__)

NODE = f"{socket.gethostname()[:32]}:{os.getpid()}"


@dataclass
class Lease:
    """A held lease: who holds it, and the upload's row as it stood when it was taken."""

    upload_id: str
    owner: str
    video: Video | None
    released: bool = False


class WriterLeases:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        locks: UploadLocks,
        *,
        lease_seconds: float = 10.0,
        heartbeat_seconds: float = 1.0,
        poll_seconds: float = 0.2,
    ) -> None:
        self.database = database
        self.chunks = database.chunks
        self.clock = clock
        self.locks = locks
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds

    def exclusive(
        self,
        upload_id: str,
        *,
        preempt: bool = False,
        wait_seconds: float | None = None,
        user_id: str | None = None,
    ) -> ExclusiveLease:
        """Hold the upload in this process and across nodes (`async with`, which gives the
        `Lease`), or raise 423 after waiting.

        With `preempt`, a busy holder is asked to stop, but only on behalf of the upload's
        owner: when `user_id` is given and is not the owner, this raises 403 instead.
        """
        wait = wait_seconds if wait_seconds is not None else self.locks.wait_seconds
        return ExclusiveLease(self, upload_id, preempt, wait, user_id)

    def is_busy(self, video: Video) -> bool:
        """Whether someone (here or on another node) may be writing to this upload now."""
        if self.locks.is_held(video.upload_id):
            return True
        return (
            video.lock_owner is not None
            and video.lock_expires_at is not None
            and video.lock_expires_at > self.clock()
        )

    async def _take(
        self, upload_id: str, owner: str, *, preempt: bool, deadline: float, user_id: str | None
    ) -> Video:
        loop = asyncio.get_running_loop()
        asked_to_stop_at = float("-inf")
        while True:
            now = self.clock()
            taken = await self.chunks.take_lease(
                upload_id, owner, now, now + timedelta(seconds=self.lease_seconds)
            )
            if taken is not None:
                return taken
            async with self.database.transaction() as db:
                repository = db.leases
                state = await repository.state(upload_id)
                if state is None:
                    raise ServiceError(ERR_UPLOAD_NOT_FOUND)
                if user_id is not None and state.user_id != user_id:
                    raise ERR_FORBIDDEN.with_message("this upload belongs to another user")
                if preempt and loop.time() - asked_to_stop_at >= 1.0:
                    await repository.request_stop(upload_id)
                    metrics.lease_preemptions.inc()
                    await db.commit()
                    asked_to_stop_at = loop.time()
            if loop.time() >= deadline:
                raise ERR_UPLOAD_LOCKED.with_message(
                    "another request is writing to this upload; retry shortly"
                )
            await asyncio.sleep(self.poll_seconds)

    async def _heartbeat(self, lease: Lease, stopped: asyncio.Event, taken_at: float) -> None:
        """Every `heartbeat_seconds`, look for a stop request (a read); renew the lease (a
        write) once a third of it has passed, so hundreds of slow uploads cost few writes."""
        renewed_at: float | None = taken_at
        while renewed_at is not None and not stopped.is_set() and not lease.released:
            renewed_at = await self._check_lease(lease, stopped, renewed_at)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), timeout=self.heartbeat_seconds)

    async def _check_lease(
        self, lease: Lease, stopped: asyncio.Event, renewed_at: float
    ) -> float | None:
        """One heartbeat: when the lease was last renewed, or None once its writer is told to
        stop because the lease was lost."""
        loop = asyncio.get_running_loop()
        upload_id, owner = lease.upload_id, lease.owner
        renew = loop.time() - renewed_at >= self.lease_seconds / 3
        until = self.clock() + timedelta(seconds=self.lease_seconds)
        try:
            async with self.database.transaction() as db:
                repository = db.leases
                if renew:
                    state = await repository.renew(upload_id, owner, until)
                    await db.commit()
                else:
                    state = await repository.state(upload_id)
        except ServiceError:
            log.warning("could not check the lease on upload %s; retrying", upload_id)
            return renewed_at
        if lease.released or stopped.is_set():
            return renewed_at
        if renew and state is not None:
            renewed_at = loop.time()
        if state is None or state.owner != owner:
            log.warning("lost the lease on upload %s; stopping its writer", upload_id)
            self.locks.stop(upload_id, only_if_stalled=False)
            return None
        if state.stop_requested:
            self.locks.stop(upload_id, only_if_stalled=True)
        return renewed_at

    async def _release(self, upload_id: str, owner: str) -> None:
        try:
            await self.chunks.release(upload_id, owner)
        except ServiceError:
            log.warning("could not release the lease on %s; it runs out by itself", upload_id)


class ExclusiveLease:
    """`WriterLeases.exclusive`'s context: the process's lock, then the lease row, with a
    heartbeat for requests that last; given back on the way out. A class rather than a
    generator-based context manager, which costs every PATCH a generator and its frames."""

    __slots__ = (
        "_heartbeat",
        "_held",
        "_lease",
        "_leases",
        "_preempt",
        "_starter",
        "_stopped",
        "_upload_id",
        "_user_id",
        "_wait_seconds",
    )

    def __init__(
        self,
        leases: WriterLeases,
        upload_id: str,
        preempt: bool,
        wait_seconds: float,
        user_id: str | None,
    ) -> None:
        self._leases = leases
        self._upload_id = upload_id
        self._preempt = preempt
        self._wait_seconds = wait_seconds
        self._user_id = user_id
        self._held: HeldLock | None = None
        self._lease: Lease | None = None
        self._stopped = asyncio.Event()
        self._heartbeat: list[asyncio.Task[None]] = []
        self._starter: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> Lease:
        leases, upload_id = self._leases, self._upload_id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        held = leases.locks.hold(upload_id, preempt=self._preempt, wait_seconds=self._wait_seconds)
        await held.__aenter__()
        try:
            owner = f"{NODE}:{secrets.token_hex(6)}"
            video = await leases._take(
                upload_id, owner, preempt=self._preempt, deadline=deadline, user_id=self._user_id
            )
        except BaseException:
            await held.__aexit__(*sys.exc_info())
            raise
        self._held = held
        lease = self._lease = Lease(upload_id, owner, video)
        taken_at = loop.time()
        heartbeat, stopped = self._heartbeat, self._stopped
        # Most requests end well within a heartbeat: start one only for those that do not.
        self._starter = loop.call_later(
            leases.heartbeat_seconds,
            lambda: heartbeat.append(loop.create_task(leases._heartbeat(lease, stopped, taken_at))),
        )
        return lease

    async def __aexit__(self, *exc_info: Any) -> None:
        held, lease = self._held, self._lease
        assert held is not None and lease is not None, "not entered"
        try:
            if self._starter is not None:
                self._starter.cancel()
            # Signalled, not cancelled: a cancellation landing mid-statement would make
            # SQLAlchemy throw the connection away.
            self._stopped.set()
            for task in self._heartbeat:
                await task
            if not lease.released:
                await self._leases._release(lease.upload_id, lease.owner)
        finally:
            await held.__aexit__(*exc_info)
