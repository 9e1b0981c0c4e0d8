"""The local store's durability policy, what it reports after a machine crash, and the disk
space it reserves for the rest of an upload."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from video_upload.storage.base import (
    ByteRange,
    BytesMissing,
    StorageError,
    StorageFull,
    StoredUpload,
)
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


def test_reading_a_file_cut_short_fails_before_the_first_byte(tmp_path: Path) -> None:
    """A reader learns that bytes are missing before it has given any away (the content
    endpoint then answers 404 instead of a 200 cut off mid-body)."""
    store = LocalStore(tmp_path)

    async def scenario() -> list[bytes]:
        await store.create("take")
        written = await store.write(StoredUpload("take", 0), body(b"v" * 4096))
        await store.finish(StoredUpload("take", written.offset))
        os.truncate(tmp_path / "take", 1000)
        given: list[bytes] = []
        with pytest.raises(BytesMissing):
            async for chunk in store.read(StoredUpload("take", 4096), ByteRange(0, 4095)):
                given.append(chunk)
        return given

    assert asyncio.run(scenario()) == []


def test_reading_a_file_that_is_gone_says_the_bytes_are_missing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    async def scenario() -> None:
        with pytest.raises(BytesMissing):
            async for _ in store.read(StoredUpload("never-written", 10), ByteRange(0, 9)):
                pass

    asyncio.run(scenario())


def test_listing_keys_skips_a_file_removed_while_the_folder_is_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two cleaners at once: one removes an upload's file while the other lists the folder."""
    store = LocalStore(tmp_path)
    an_hour_ago = datetime.now(UTC).timestamp() - 3600
    for name in ("gone", "kept"):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (an_hour_ago, an_hour_ago))
    real_scandir = os.scandir

    @contextlib.contextmanager
    def scandir_then_remove(path: Path) -> Iterator[Iterator[os.DirEntry[str]]]:
        with real_scandir(path) as entries:
            listed = list(entries)
        (tmp_path / "gone").unlink()  # after the listing, before each entry is looked at
        yield iter(listed)

    monkeypatch.setattr(os, "scandir", scandir_then_remove)
    assert asyncio.run(store.list_keys(datetime.now(UTC))) == ["kept"]


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


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_a_write_reserves_the_room_for_the_rest_of_the_upload_without_growing_the_file(
    tmp_path: Path,
) -> None:
    """The rest of a known length is reserved at the first write (HEAD and crash recovery still
    see only the bytes written), and nothing stays reserved once the upload is complete."""
    store = LocalStore(tmp_path)
    length = 8 * 1024 * 1024
    path = tmp_path / "take"

    async def scenario() -> tuple[int, int]:
        await store.create("take")
        first = await store.write(StoredUpload("take", 0, length=length), body(b"a" * 1000))
        reserved = _allocated(path)
        assert os.stat(path).st_size == first.offset == 1000
        assert await store.held(StoredUpload("take", first.offset, length=length)) == 1000
        rest = b"b" * (length - 1000)
        done = await store.write(StoredUpload("take", first.offset, length=length), body(rest))
        await store.finish(StoredUpload("take", done.offset, length=length))
        return reserved, _allocated(path)

    reserved, finished = asyncio.run(scenario())
    assert reserved >= length
    assert length <= finished < length + 64 * 1024
    assert path.read_bytes() == b"a" * 1000 + b"b" * (length - 1000)


def test_an_upload_declared_huge_holds_only_a_bounded_window_past_its_bytes(
    tmp_path: Path,
) -> None:
    """Declaring a length costs the disk nothing beyond a window past the bytes received: a
    client cannot take the disk by declaring uploads it never sends."""
    store = LocalStore(tmp_path, reserve_window=4 * 1024 * 1024)
    declared = 500 * 1024 * 1024

    async def scenario() -> None:
        await store.create("take")
        await store.write(StoredUpload("take", 0, length=declared), body(b"a"))

    asyncio.run(scenario())
    assert 4 * 1024 * 1024 <= _allocated(tmp_path / "take") < 5 * 1024 * 1024


def test_the_room_given_back_with_an_abandoned_write_is_reserved_again_by_the_next(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path)
    length = 4 * 1024 * 1024
    path = tmp_path / "take"

    async def scenario() -> None:
        await store.create("take")
        committed = await store.write(StoredUpload("take", 0, length=length), body(b"a" * 1000))
        abandoned = await store.write(
            StoredUpload("take", committed.offset, length=length), body(b"x" * 5000)
        )
        await store.discard(StoredUpload("take", committed.offset, length=length), abandoned)
        assert _allocated(path) < length  # cutting the file gave the reservation back
        await store.write(StoredUpload("take", committed.offset, length=length), body(b"b" * 10))
        assert _allocated(path) >= length

    asyncio.run(scenario())
    assert path.read_bytes() == b"a" * 1000 + b"b" * 10


def test_a_write_the_disk_cannot_hold_is_refused_before_reading_its_body(tmp_path: Path) -> None:
    """A PATCH whose reservation the disk cannot hold fails before its body is read, not when
    the disk is full; the committed bytes stay and nothing is reserved. (The window is made
    larger than the disk here; the default one is a few MiB.)"""
    store = LocalStore(tmp_path, reserve_window=2**62)
    stats = os.statvfs(tmp_path)
    length = stats.f_bavail * stats.f_frsize + 1024**3  # a GiB more than the disk has free
    path = tmp_path / "take"
    read: list[bytes] = []

    async def refused_body() -> AsyncIterator[bytes]:
        read.append(b"y" * 10)
        yield read[-1]

    async def scenario() -> None:
        await store.create("take")
        await store.write(StoredUpload("take", 0), body(b"a" * 1000))  # length not yet known
        before = _allocated(path)
        with pytest.raises(StorageFull, match="not enough disk space"):
            await store.write(StoredUpload("take", 1000, length=length), refused_body())
        assert _allocated(path) == before

    asyncio.run(scenario())
    assert read == []
    assert path.read_bytes() == b"a" * 1000


def test_scanning_for_orphans_and_deleting_leave_the_event_loop_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The periodic cleanup scans the whole folder and unlinks large files: both must run off
    the event loop, or every upload on the node stalls meanwhile. Each blocking call here waits
    until the event loop has run a callback of its own; on the loop's thread it would wait in
    vain (and report so)."""
    store = LocalStore(tmp_path)
    (tmp_path / "some-upload").write_bytes(b"bytes")
    loop_was_free: list[bool] = []

    def waits_for_the_loop(real: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            released = threading.Event()
            loop.call_soon_threadsafe(released.set)
            loop_was_free.append(released.wait(timeout=2))
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(os, "scandir", waits_for_the_loop(os.scandir))
    monkeypatch.setattr(Path, "unlink", waits_for_the_loop(Path.unlink))

    async def clean() -> list[str]:
        keys = await store.list_keys(datetime.now(UTC) + timedelta(seconds=1))
        await store.remove_key("some-upload")
        return keys

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(clean()) == ["some-upload"]
    finally:
        loop.close()
    assert loop_was_free == [True, True]
    assert not (tmp_path / "some-upload").exists()
