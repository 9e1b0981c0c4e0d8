"""Starting writeback after each write: a hint that covers exactly what was written, never fails."""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from video_upload.storage import writeback
from video_upload.storage.base import StoredUpload
from video_upload.storage.local import LocalStore


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_each_write_starts_writeback_of_exactly_its_bytes_once_the_write_has_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[int, int]] = []

    def record(fd: int, start: int, length: int) -> None:
        # the store closed its own descriptor long ago: this one is a duplicate of it
        assert os.fstat(fd).st_ino == (tmp_path / "take").stat().st_ino
        started.append((start, length))

    monkeypatch.setattr(writeback, "start_writeback", record)
    store = LocalStore(tmp_path)

    async def scenario() -> None:
        await store.create("take")
        before = open_descriptors()
        first = await store.write(StoredUpload("take", 0), body(b"a" * 700, b"b" * 300))
        assert started == []  # not inside the write: on the event loop's next turn
        await asyncio.sleep(0)
        assert started == [(0, 1000)]
        await store.write(StoredUpload("take", first.offset), body(b"c" * 250))
        await store.write(StoredUpload("take", first.offset + 250), body())  # nothing to flush
        await asyncio.sleep(0)
        assert open_descriptors() == before  # every duplicate closed

    asyncio.run(scenario())
    assert started == [(0, 1000), (1000, 250)]


def test_starting_writeback_on_a_bad_descriptor_is_silent(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "gone", os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    writeback.start_writeback(fd, 0, 4096)  # a hint: a failure must not fail the write


def test_without_sync_file_range_in_libc_the_fadvise_fallback_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_libc(*args: object, **kwargs: object) -> None:
        raise OSError("no shared libc here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert writeback._sync_file_range() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux only")
def test_on_linux_writeback_uses_sync_file_range_not_fadvise() -> None:
    assert writeback.start_writeback is not writeback._fadvise
