"""Guarding a request body on its way to storage: counting, limiting and hashing it, and
stopping when the upload's writer is pre-empted.

The guard ends the stream (instead of raising) when the client disconnects, when the body would
run past the upload's length, or when a newer request of the owner (or the drain at shutdown)
asks the writer to stop, and records which happened, so the store always sees a well-formed
stream and the service decides afterwards what to commit. A body that brings no bytes for
NETWORK_TIMEOUT_SECONDS ends as a disconnect (the HTTP layer's `http.limits` hands the body's
reader `http.disconnect`), so a stalled PATCH keeps what it received and lets go of its upload.
All of it happens in one generator: every layer of async generator costs each body message about
2,000 instructions (a 5 MiB PATCH arrives in some 25 messages).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from video_upload.domain.checksums import ExpectedChecksum, Hasher
from video_upload.lifecycle.locks import PROGRESS_BYTES, Holding


class ClientGone(Exception):
    """Raised by the protocol layer's body iterator when the client disconnects."""


class GuardedBody:
    def __init__(
        self,
        source: AsyncIterator[bytes],
        *,
        limit: int,
        checksum: ExpectedChecksum | None,
        holding: Holding,
    ) -> None:
        self._source = source
        self._limit = limit
        self._hasher: Hasher | None = checksum.new_hasher() if checksum else None
        self._checksum = checksum
        self._holding = holding
        self.received = 0
        self.disconnected = False
        self.overflowed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks. Must be read by the task that holds the upload's lock: while it
        waits for bytes, a request that pre-empts it cancels the wait, and the body ends there
        (see `UploadLocks`)."""
        holding = self._holding
        iterator = self._source.__aiter__()
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        holding.progressed_at = loop.time()
        since_progress = 0
        try:
            while not holding.stop_requested:
                holding.receiving_since = loop.time()
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if holding.stop_requested and task is not None and task.uncancel() == 0:
                        return  # pre-empted: keep what arrived
                    raise
                finally:
                    holding.receiving_since = None
                if not chunk:
                    continue
                room = self._limit - self.received
                if len(chunk) > room:
                    self.overflowed = True
                    chunk = chunk[:room]
                if chunk:
                    since_progress += len(chunk)
                    if since_progress >= PROGRESS_BYTES:
                        holding.progressed_at = loop.time()
                        since_progress = 0
                    self.received += len(chunk)
                    if self._hasher is not None:
                        self._hasher.update(chunk)
                    yield chunk
                if self.overflowed:
                    return
        except ClientGone:
            self.disconnected = True

    @property
    def checksum_matches(self) -> bool:
        if self._checksum is None or self._hasher is None:
            return True
        return self._hasher.digest() == self._checksum.digest
