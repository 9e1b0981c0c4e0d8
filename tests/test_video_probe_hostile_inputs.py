"""The probe driven directly, without a server: against stores that misbehave (never answer,
answer slowly, fail) and files built to make it work too hard (more bytes than its budget, an
absurd picture size, no known duration, a still image). A stalled or failing store is a storage
failure, left for a retry, never a verdict on the file.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.videos import huge_y4m_header, raw_h264_stream, synthetic_video
from video_upload.media import ProbeLimits, ProbeRejected, examine
from video_upload.media.reader import ReadBudget, StoreReader
from video_upload.storage.base import ByteRange, StorageError, StoredUpload, UploadStore

# -- the probe against misbehaving stores and hostile files ---------------------------------


class MemoryStore:
    """Just enough of a store to be read: one object in memory, ranges in small chunks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.ranges: list[ByteRange] = []

    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        self.ranges.append(byte_range)
        for start in range(byte_range.start, byte_range.end + 1, 4096):
            yield self.data[start : min(start + 4096, byte_range.end + 1)]


class SilentStore(MemoryStore):
    """A store that is asked for bytes and never answers."""

    def __init__(self) -> None:
        super().__init__(b"")
        self.asked = asyncio.Event()

    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        self.asked.set()
        await asyncio.Event().wait()
        yield b""


class SlowStore(MemoryStore):
    """A store that takes `delay` seconds before answering each read."""

    def __init__(self, data: bytes, delay: float) -> None:
        super().__init__(data)
        self.delay = delay

    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        await asyncio.sleep(self.delay)  # the store's latency, not a stand-in for waiting on it
        async for chunk in super().read(upload, byte_range):
            yield chunk


class BrokenStore(MemoryStore):
    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        raise StorageError("S3 GetObject failed: 503 SlowDown")
        yield b""


async def probe_bytes(data: bytes, limits: ProbeLimits | None = None) -> ProbeRejected:
    store: Any = MemoryStore(data)
    with pytest.raises(ProbeRejected) as rejected:
        await examine(store, StoredUpload("key", len(data)), len(data), limits)
    return rejected.value


async def test_the_reader_serves_any_seek_from_ranged_reads_with_a_bounded_cache() -> None:
    data = random.Random(5).randbytes(3 * 1024 * 1024 + 17)
    store = MemoryStore(data)
    block, cache = 256 * 1024, 512 * 1024

    async def fetch(byte_range: ByteRange) -> bytes:
        return b"".join([chunk async for chunk in store.read(StoredUpload("k", 0), byte_range)])

    budget = ReadBudget(seconds=20, max_bytes=64 * 1024 * 1024)
    reader = StoreReader(
        asyncio.get_running_loop(), fetch, len(data), budget, block_size=block, cache_bytes=cache
    )
    positions = [*random.Random(6).sample(range(len(data)), 200), len(data) - 3]

    def read_at_positions() -> list[tuple[int, bytes, int]]:
        budget.start()
        return [
            (p, reader.read(1000), reader.cached_bytes) for p in positions if reader.seek(p) >= 0
        ]

    for position, chunk, cached in await asyncio.to_thread(read_at_positions):
        assert chunk and data.startswith(chunk, position)
        assert cached <= cache
    assert reader.read(10) == b""  # at the end
    assert reader.seek(0, 2) == len(data)
    assert all(piece.length <= block for piece in store.ranges)


async def test_a_store_that_never_answers_is_a_storage_failure_not_a_verdict() -> None:
    """A verdict deletes the upload: a stalled store must leave it for a retry instead."""
    store = SilentStore()
    started = time.monotonic()
    limits = ProbeLimits(seconds=20, store_wait_seconds=0.5)
    probing = asyncio.ensure_future(
        examine(store, StoredUpload("key", 10**6), 10**6, limits)  # type: ignore[arg-type]
    )
    await asyncio.wait_for(store.asked.wait(), 5)  # the loop ran the fetch: it was not blocked
    with pytest.raises(StorageError) as failed:
        await probing
    assert failed.value.retryable
    assert "0.5 seconds" in str(failed.value)
    assert time.monotonic() - started < 5


async def test_waiting_for_a_slow_store_does_not_count_against_the_time_budget() -> None:
    data = synthetic_video(seconds=2.0, size=(640, 480))
    store = SlowStore(data, delay=0.8)
    limits = ProbeLimits(seconds=0.5)  # less than a single wait for the store
    facts = await examine(store, StoredUpload("key", len(data)), len(data), limits)  # type: ignore[arg-type]
    assert facts.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert len(store.ranges) * store.delay > limits.seconds  # the store really was that slow


async def test_a_file_needing_more_bytes_than_the_budget_is_given_up() -> None:
    data = synthetic_video(seconds=2.0, size=(640, 480))
    rejected = await probe_bytes(data, ProbeLimits(max_read_bytes=len(data) // 4))
    assert rejected.code == "probe_failed"
    assert "bytes" in rejected.reason


async def test_an_absurd_picture_size_is_refused_before_decoding() -> None:
    rejected = await probe_bytes(huge_y4m_header(12000, 9000))
    assert rejected.code == "probe_failed"
    assert "12000x9000" in rejected.reason and "8192" in rejected.reason


async def test_a_stream_without_a_known_duration_is_refused() -> None:
    rejected = await probe_bytes(raw_h264_stream())
    assert rejected.code == "probe_failed"
    assert "duration" in rejected.reason


async def test_a_still_image_is_not_a_video() -> None:
    store: Any = MemoryStore(synthetic_video())
    facts = await examine(store, StoredUpload("key", len(store.data)), len(store.data))
    assert facts.thumbnail is not None
    rejected = await probe_bytes(facts.thumbnail)
    assert rejected.code == "not_a_video"


async def test_a_store_failure_during_the_probe_is_not_a_verdict_on_the_file() -> None:
    store: UploadStore = BrokenStore(b"")  # type: ignore[assignment]
    with pytest.raises(StorageError):
        await examine(store, StoredUpload("key", 1000), 1000)
