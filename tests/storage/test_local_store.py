"""The local store's durability policy and what it reports after a machine crash."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from video_upload.storage.base import StorageError, StoredUpload
from video_upload.storage.local import LocalStore, SyncPolicy


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def counting_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every fsync (which still runs): the durability policy is about when they happen."""
    calls: list[int] = []
    real: Callable[[int], None] = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


@pytest.mark.parametrize(("policy", "after_writes"), [("finish", 0), ("chunk", 2)])
def test_fsync_policy_decides_when_written_bytes_are_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: SyncPolicy, after_writes: int
) -> None:
    store = LocalStore(tmp_path, sync=policy)
    fsyncs = counting_fsyncs(monkeypatch)

    async def scenario() -> None:
        await store.create("take")
        first = await store.write(StoredUpload("take", 0), body(b"a" * 1000))
        second = await store.write(StoredUpload("take", first.offset), body(b"b" * 500))
        assert len(fsyncs) == after_writes
        await store.finish(StoredUpload("take", second.offset))

    asyncio.run(scenario())
    assert len(fsyncs) == after_writes + 1  # a finished upload is always on disk
    assert (tmp_path / "take").read_bytes() == b"a" * 1000 + b"b" * 500


def test_held_reports_the_bytes_a_crash_left_of_the_committed_ones(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    async def scenario() -> tuple[int, int, int]:
        await store.create("take")
        written = await store.write(StoredUpload("take", 0), body(b"x" * 4096))
        whole = await store.held(StoredUpload("take", written.offset))
        os.truncate(tmp_path / "take", 1000)
        cut = await store.held(StoredUpload("take", written.offset))
        (tmp_path / "take").unlink()
        gone = await store.held(StoredUpload("take", written.offset))
        return whole, cut, gone

    assert asyncio.run(scenario()) == (4096, 1000, 0)


def test_write_past_the_end_of_a_cut_file_fails_instead_of_padding_with_zeros(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path)

    async def scenario() -> None:
        await store.create("take")
        await store.write(StoredUpload("take", 0), body(b"x" * 4096))
        os.truncate(tmp_path / "take", 1000)
        with pytest.raises(StorageError, match="shorter than its committed offset"):
            await store.write(StoredUpload("take", 4096), body(b"y" * 10))
        with pytest.raises(StorageError, match="shorter than its committed offset"):
            await store.finish(StoredUpload("take", 4096))

    asyncio.run(scenario())
    assert (tmp_path / "take").read_bytes() == b"x" * 1000


def test_a_write_drops_what_an_abandoned_write_left_past_the_committed_offset(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path)

    async def scenario() -> None:
        await store.create("take")
        committed = await store.write(StoredUpload("take", 0), body(b"a" * 1000))
        # a write whose offset was never committed (the process died before the commit)
        await store.write(StoredUpload("take", committed.offset), body(b"x" * 5000))
        resent = await store.write(StoredUpload("take", committed.offset), body(b"b" * 300))
        assert resent.offset == 1300

    asyncio.run(scenario())
    assert (tmp_path / "take").read_bytes() == b"a" * 1000 + b"b" * 300
