"""Per-upload mutual exclusion for writers within one process, with pre-emption.

A phone that loses its network mid-PATCH usually retries (HEAD, then PATCH) long before the
server notices the old connection is dead. A newer request from the owner therefore pre-empts a
holder that is *stalled*: one that has not received `PROGRESS_BYTES` of body for
`stall_seconds` (nothing at all, or a trickle, which would otherwise keep the upload from its
owner for as long as it lasts). The holder's wait for bytes is cancelled, it saves what it
received, commits, and lets go, so the retry is served within seconds with a correct offset.
A holder that is still receiving at speed is not pre-empted: a truly concurrent second writer
waits, then gets 409 (the offset moved) or 423 (still busy).

Across processes and nodes the conditional offset update in the repository is what keeps two
writers apart (the loser's bytes are discarded and it gets 409).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from video_upload.domain.errors import ERR_UPLOAD_LOCKED

# The body a holder must receive every `stall_seconds` not to count as stalled: far below any
# real network's speed, far above a trickle meant to hold the upload.
PROGRESS_BYTES = 16 * 1024


@dataclass
class Holding:
    """One upload's lock, and what its holder's reading of the body shares with the requests
    that may pre-empt it (`lifecycle.streams.GuardedBody` reads through it): since when the holder
    has been waiting for body bytes, and whether it was asked to stop."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    holder: asyncio.Task[object] | None = None
    receiving_since: float | None = None
    # when the holder last received `PROGRESS_BYTES` of body (or started reading it); None
    # while it is not reading a body
    progressed_at: float | None = None
    stop_requested: bool = False


class UploadLocks:
    def __init__(
        self, wait_seconds: float = 10.0, stall_seconds: float = 1.0, poll_seconds: float = 0.1
    ) -> None:
        self._entries: dict[str, Holding] = {}
        self.wait_seconds = wait_seconds
        self.stall_seconds = stall_seconds
        self.poll_seconds = poll_seconds
        self.draining = False
        self._drain_task: asyncio.Task[None] | None = None

    def hold(
        self, upload_id: str, *, preempt: bool = False, wait_seconds: float | None = None
    ) -> HeldLock:
        """Hold the upload (`async with`), waiting up to `wait_seconds` (else 423).

        With `preempt`, a holder that stalls while we wait is told to stop and save.
        """
        return HeldLock(self, upload_id, preempt, wait_seconds or self.wait_seconds)

    def _enter(self, upload_id: str) -> Holding:
        entry = self._entries.setdefault(upload_id, Holding())
        entry.users += 1
        return entry

    def _leave(self, upload_id: str, entry: Holding) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._entries[upload_id]

    def is_held(self, upload_id: str) -> bool:
        entry = self._entries.get(upload_id)
        return entry is not None and entry.lock.locked()

    def stop(self, upload_id: str, *, only_if_stalled: bool) -> None:
        """Ask the holder of `upload_id` to stop and save (a request from another node)."""
        entry = self._entries.get(upload_id)
        if entry is None:
            return
        if only_if_stalled:
            self._stop_if_stalled(entry, asyncio.get_running_loop().time())
        else:
            self._stop(entry)

    def stop_all(self, *, idle_seconds: float = 0.5, budget_seconds: float = 5.0) -> None:
        """Graceful shutdown: let every writer save what it received, then stop it.

        For `budget_seconds`, a writer is stopped as soon as its client has sent nothing for
        `idle_seconds` (so bytes already on their way are read and kept); after that, every
        writer, and any that starts later, is stopped at once.
        """
        self._drain_task = asyncio.get_running_loop().create_task(
            self._drain(idle_seconds, budget_seconds)
        )

    async def _drain(self, idle_seconds: float, budget_seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_seconds
        while loop.time() < deadline:
            for entry in list(self._entries.values()):
                self._stop_if_stalled(entry, loop.time(), idle_seconds)
            await asyncio.sleep(self.poll_seconds)
        self.draining = True
        for entry in list(self._entries.values()):
            self._stop(entry)

    async def _acquire(self, entry: Holding, preempt: bool, wait_seconds: float) -> None:
        if entry.users == 1 and not entry.lock.locked():  # the common case: nobody else here
            await entry.lock.acquire()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            if preempt:
                self._stop_if_stalled(entry, loop.time())
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ERR_UPLOAD_LOCKED.with_message(
                    "another request is writing to this upload; retry shortly"
                )
            try:
                await asyncio.wait_for(
                    entry.lock.acquire(), timeout=min(remaining, self.poll_seconds)
                )
                return
            except TimeoutError:
                continue

    def _stop_if_stalled(self, entry: Holding, now: float, idle: float | None = None) -> None:
        since = entry.progressed_at
        threshold = self.stall_seconds if idle is None else idle
        if since is not None and now - since >= threshold:
            self._stop(entry)

    @staticmethod
    def _stop(entry: Holding) -> None:
        """Tell the holder to stop; if it is waiting for body bytes, cancel that wait."""
        if entry.holder is None:
            return
        entry.stop_requested = True
        if entry.receiving_since is not None:
            entry.holder.cancel()

    def holding(self, upload_id: str) -> Holding:
        """The lock on `upload_id`, for the task that holds it to read the body through
        (`lifecycle.streams.GuardedBody`): it stops reading when a newer request or the drain
        pre-empts it."""
        return self._entries[upload_id]


class HeldLock:
    """`UploadLocks.hold`'s context: a class rather than a generator-based context manager,
    which costs every PATCH a generator and its frames."""

    __slots__ = ("_entry", "_locks", "_preempt", "_upload_id", "_wait_seconds")

    def __init__(
        self, locks: UploadLocks, upload_id: str, preempt: bool, wait_seconds: float
    ) -> None:
        self._locks = locks
        self._upload_id = upload_id
        self._preempt = preempt
        self._wait_seconds = wait_seconds
        self._entry: Holding | None = None

    async def __aenter__(self) -> None:
        locks = self._locks
        entry = locks._enter(self._upload_id)
        try:
            await locks._acquire(entry, self._preempt, self._wait_seconds)
        except BaseException:
            locks._leave(self._upload_id, entry)
            raise
        entry.holder = asyncio.current_task()
        entry.stop_requested = locks.draining  # once draining, every new holder stops at once
        self._entry = entry

    async def __aexit__(self, *exc_info: object) -> None:
        entry = self._entry
        assert entry is not None, "not entered"
        self._entry = None
        entry.holder = None
        entry.receiving_since = None
        entry.progressed_at = None
        entry.lock.release()
        self._locks._leave(self._upload_id, entry)
