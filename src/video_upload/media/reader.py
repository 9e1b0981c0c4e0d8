"""A synchronous, seekable file-like view of a stored upload, for FFmpeg in a worker thread.

PyAV reads through `read`/`seek`/`tell` from the thread that runs the probe. Every miss fetches
one aligned block with a ranged read of the store (`UploadStore.read` for a byte range: a ranged
GetObject on S3), scheduled on the event loop with `asyncio.run_coroutine_threadsafe`; the thread
waits for it, the loop never waits for the thread. Blocks are kept in a small LRU cache (read-ahead
for FFmpeg's sequential reads, at most `cache_bytes` in memory), so the whole object is never held.

A `ReadBudget` bounds the work against hostile files: once its time runs out or more than its bytes
have been fetched, the read raises `ProbeAborted`, which makes FFmpeg abort. Its time is the
examination's own: time spent waiting for the store does not count, because a slow store says
nothing about the file, and a verdict on the file deletes it. A store that takes longer than
`store_wait_seconds` to return one block is a retryable `StorageError` instead, never a verdict.

PyAV may swallow an exception raised inside a read callback (it then sees an I/O error or an end
of file), so the reader also remembers it: `raise_failure` re-raises it where the probe checks.
After a failure every read answers end-of-file, so FFmpeg stops quickly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from video_upload.storage.base import ByteRange, StorageError

Fetch = Callable[[ByteRange], Coroutine[Any, Any, bytes]]

AVSEEK_SIZE = 0x10000  # FFmpeg's "what is the size?" seek


class ProbeAborted(Exception):
    """The probe ran out of its time or byte budget (a hostile or pathological file)."""


@dataclass
class ReadBudget:
    """How long a probe may work and how many bytes it may fetch, from `start()` on; and how long
    one fetch may wait for the store."""

    seconds: float
    max_bytes: int
    store_wait_seconds: float = 60.0
    fetched: int = 0
    deadline: float = field(default=float("inf"))

    def start(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def exclude(self, waited: float) -> None:
        """Give back time spent waiting for the store: it is not the examination's."""
        self.deadline += waited

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check_time(self) -> None:
        if self.remaining() <= 0:
            raise ProbeAborted(f"examining the video took longer than {self.seconds:g} seconds")

    def spend(self, amount: int) -> None:
        if self.fetched + amount > self.max_bytes:
            raise ProbeAborted(f"examining the video needed more than {self.max_bytes} bytes of it")
        self.fetched += amount


class StoreReader:
    """Read-only, seekable bytes of one finished upload, fetched block by block from the loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fetch: Fetch,
        size: int,
        budget: ReadBudget,
        *,
        block_size: int = 512 * 1024,
        cache_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._loop = loop
        self._fetch = fetch
        self.size = size
        self.budget = budget
        self.block_size = block_size
        self.max_blocks = max(1, cache_bytes // block_size)
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._position = 0
        self.failure: BaseException | None = None
        self.fetches: list[ByteRange] = []

    # -- the file-like interface PyAV uses -----------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == AVSEEK_SIZE:
            return self.size
        base = {0: 0, 1: self._position, 2: self.size}.get(whence)
        if base is None:
            raise ValueError(f"unsupported whence {whence}")
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes from the current position (fewer at a block's end; b"" at EOF)."""
        if self.failure is not None or self._position >= self.size:
            return b""
        if size < 0:
            size = self.block_size
        try:
            block = self._block(self._position // self.block_size)
        except BaseException as error:
            self.failure = error
            raise
        start = self._position % self.block_size
        data = block[start : start + size]
        self._position += len(data)
        return data

    def close(self) -> None:
        self._blocks.clear()

    # -- for the probe -------------------------------------------------------------------------

    def raise_failure(self) -> None:
        """Re-raise the read failure that made FFmpeg give up, if there was one."""
        if self.failure is not None:
            raise self.failure

    @property
    def cached_bytes(self) -> int:
        return sum(len(block) for block in self._blocks.values())

    # -- fetching ------------------------------------------------------------------------------

    def _block(self, index: int) -> bytes:
        cached = self._blocks.get(index)
        if cached is not None:
            self._blocks.move_to_end(index)
            return cached
        start = index * self.block_size
        byte_range = ByteRange(start, min(start + self.block_size, self.size) - 1)
        self.budget.check_time()
        self.budget.spend(byte_range.length)
        data = self._fetch_range(byte_range)
        if len(data) != byte_range.length:
            raise ProbeAborted("the stored video is shorter than its recorded size")
        self._blocks[index] = data
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)
        return data

    def _fetch_range(self, byte_range: ByteRange) -> bytes:
        if _running_loop() is self._loop:
            raise RuntimeError("StoreReader must not be used on its event loop's thread")
        self.fetches.append(byte_range)
        future = asyncio.run_coroutine_threadsafe(self._fetch(byte_range), self._loop)
        waiting_since = time.monotonic()
        try:
            return future.result(timeout=self.budget.store_wait_seconds)
        except concurrent.futures.TimeoutError:
            future.cancel()
            # Not the file's fault either: the upload stays, and completing it can be retried.
            raise StorageError(
                f"the store took longer than {self.budget.store_wait_seconds:g} seconds "
                "to return part of the video"
            ) from None
        except (StorageError, ProbeAborted):
            raise
        except Exception as error:  # the loop is closing, the fetch was cancelled...
            # Not the file's fault: a failure to read is never a verdict on the video.
            raise StorageError(f"reading the stored video failed: {error!r}") from error
        finally:
            self.budget.exclude(time.monotonic() - waiting_since)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["AVSEEK_SIZE", "Fetch", "ProbeAborted", "ReadBudget", "StoreReader"]
