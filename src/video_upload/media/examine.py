"""Probing a stored upload without blocking the event loop.

The probe (FFmpeg through PyAV) blocks, so it runs in a worker thread; its reads come back to the
event loop, where the store lives, as ranged reads. The threads are a small pool of their own
rather than `asyncio.to_thread`'s default pool: the local store does its file reads with
`asyncio.to_thread`, and probes blocked on such reads must never be able to fill the very pool
those reads wait for. The pool also caps how many probes (and so how much probe memory: one
read cache and one decoder each) a process runs at once; further completions wait their turn.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from video_upload.media.probe import ProbeLimits, VideoFacts, probe
from video_upload.media.reader import ReadBudget, StoreReader
from video_upload.storage.base import ByteRange, StoredUpload, UploadStore

PROBE_THREADS = 2

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _probe_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="video-probe")
        return _pool


async def read_range(store: UploadStore, upload: StoredUpload, byte_range: ByteRange) -> bytes:
    """One range of a finished upload, in memory (the reader asks for one block at a time)."""
    stream = store.read(upload, byte_range)
    pieces: list[bytes] = []
    try:
        async for chunk in stream:
            pieces.append(chunk)
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()  # releases the file or the S3 connection if we stopped early
    return b"".join(pieces)


async def examine(
    store: UploadStore, upload: StoredUpload, size: int, limits: ProbeLimits | None = None
) -> VideoFacts:
    """Probe the finished upload of `size` bytes in a worker thread.

    Raises `ProbeRejected` (the file is not an acceptable video) or `StorageError` (the store
    failed; no verdict).
    """
    limits = limits or ProbeLimits()
    loop = asyncio.get_running_loop()

    async def fetch(byte_range: ByteRange) -> bytes:
        return await read_range(store, upload, byte_range)

    budget = ReadBudget(limits.seconds, limits.max_read_bytes, limits.store_wait_seconds)
    reader = StoreReader(loop, fetch, size, budget)
    return await loop.run_in_executor(_probe_pool(), probe, reader, limits)
