"""Per-upload mutual exclusion for writers within one process.

Across processes and nodes the conditional offset update in the repository is what keeps two
writers apart (the loser's bytes are discarded and it gets 409); this lock makes the common case,
a client retrying while its previous request is still draining, fail fast with 423 instead of
racing. Waiting a moment first lets a request that is about to finish finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from video_upload.errors import ERR_UPLOAD_LOCKED


class UploadLocks:
    def __init__(self, wait_seconds: float = 2.0) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self.wait_seconds = wait_seconds

    @asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(upload_id, asyncio.Lock())
        self._users[upload_id] = self._users.get(upload_id, 0) + 1
        try:
            try:
                await asyncio.wait_for(lock.acquire(), timeout=self.wait_seconds)
            except TimeoutError:
                raise ERR_UPLOAD_LOCKED.with_message(
                    "another request is writing to this upload; retry shortly"
                ) from None
            try:
                yield
            finally:
                lock.release()
        finally:
            self._users[upload_id] -= 1
            if self._users[upload_id] == 0:
                del self._users[upload_id]
                del self._locks[upload_id]
