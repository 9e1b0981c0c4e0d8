"""The embedded default store: one file per upload in a local directory.

Layout: `<root>/<key>` holds the bytes of upload `key` (keys are server-made ids, never file
names from clients). A write first cuts the file back to the committed offset, so bytes an
abandoned write left behind (a crash before the metadata commit, a failed checksum) are dropped
and the client's resend lands exactly where the database says the upload stands.

Before a write, the room for the rest of the upload is reserved when its length is known
(`storage.reserve`): a disk that cannot hold it refuses the PATCH at once (`StorageFull`), and the
writes land in blocks already allocated. Writes go through a buffer of at most `buffer_size`
bytes (small, so that hundreds of slow uploads cost little memory). When bytes reach the disk
is the `sync` policy:

- `finish` (the default): each write leaves its bytes in the operating system's page cache, which
  survives a crash of the service, and asks the kernel to start writing them to disk without
  waiting (`storage.writeback`); `finish` flushes the file before an upload is reported
  complete (quickly, since most of it is on disk by then). The writeback is started on the
  event loop's next turn, after the request that wrote the bytes has normally been answered.
  A crash of the whole machine can take away the unflushed tail of an unfinished upload: `held`
  then reports the file's real length, the service moves the upload back to it, and the client
  sends that tail again. Nothing is lost or corrupted, only re-sent.
- `chunk`: every write is flushed before it returns, so a committed offset never moves back; it
  costs an fsync per PATCH (docs/performance.md).

Sidecars (a finished video's thumbnail) live in the directory `<root>/<key>.sidecar/`, beside the
upload's file; `list_keys` reports a sidecar folder under its upload's key (so one left behind by
an upload that is gone is collected as an orphan), and `terminate` and `remove_key` delete it
first, then the upload's file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal

from video_upload.storage.base import (
    SIDECAR_SUFFIX,
    ByteRange,
    BytesMissing,
    ByteStream,
    StorageError,
    StorageFull,
    StoredUpload,
    StoreState,
    WriteResult,
    check_sidecar,
)
from video_upload.storage.reserve import RESERVE_AHEAD, reserve_ahead
from video_upload.storage.writeback import start_writeback_soon

READ_CHUNK = 256 * 1024

SyncPolicy = Literal["finish", "chunk"]


class LocalStore:
    """Keeps uploads as files under one directory."""

    def __init__(
        self,
        root: Path,
        *,
        buffer_size: int = 64 * 1024,
        sync: SyncPolicy = "finish",
        reserve_window: int = RESERVE_AHEAD,
    ) -> None:
        self.root = root
        self.buffer_size = buffer_size
        self.sync = sync
        self.reserve_window = reserve_window
        self.root.mkdir(parents=True, exist_ok=True)
        self._prefix = os.path.join(str(root), "")  # the folder, ending in a separator

    def path_for(self, key: str) -> Path:
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        """The file of upload `key`, as a string (the per-PATCH calls skip pathlib)."""
        if not key or "/" in key or "\\" in key or key.startswith("."):
            raise StorageError(f"invalid storage key {key!r}", retryable=False)
        return self._prefix + key

    async def create(self, key: str) -> StoreState:
        path = self.path_for(key)
        try:
            path.touch(exist_ok=False)
        except OSError as error:
            raise StorageError(f"cannot create upload file: {error.strerror}") from error
        return {}

    async def write(self, upload: StoredUpload, stream: ByteStream) -> WriteResult:
        path = self._file(upload.key)
        # From offset 0 the file may be made again: a machine crash can take away a new file.
        flags = os.O_WRONLY | (os.O_CREAT if upload.offset == 0 else 0)
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError as error:
            raise StorageError("upload file is missing", retryable=False) from error
        except OSError as error:
            raise StorageError(f"cannot open upload file: {error.strerror}") from error
        offset = upload.offset
        try:
            status = _refuse_gap(fd, upload.offset)
            if status.st_size > upload.offset:
                os.ftruncate(fd, upload.offset)
                status = os.fstat(fd)  # the cut gave back what was reserved past it
            if upload.length is not None:
                reserve_ahead(
                    fd,
                    upload.offset,
                    upload.length,
                    allocated=status.st_blocks * 512,
                    window=self.reserve_window,
                )
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in stream:
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= self.buffer_size:
                    offset = _write_all(fd, pending, offset)
                    pending, pending_size = [], 0
            offset = _write_all(fd, pending, offset)
            if self.sync == "chunk":
                await asyncio.to_thread(os.fsync, fd)
            elif offset > upload.offset:
                start_writeback_soon(fd, upload.offset, offset - upload.offset)
        except OSError as error:
            raise StorageError(f"cannot write upload file: {error.strerror}") from error
        finally:
            os.close(fd)
        return WriteResult(offset=offset, state=dict(upload.state))

    async def held(self, upload: StoredUpload) -> int:
        try:
            size = os.stat(self._file(upload.key)).st_size
        except FileNotFoundError:
            size = 0
        except OSError as error:
            raise StorageError(f"cannot inspect upload file: {error.strerror}") from error
        return min(size, upload.offset)

    async def discard(self, committed: StoredUpload, abandoned: WriteResult) -> None:
        with contextlib.suppress(OSError):  # the next write truncates anyway
            os.truncate(self.path_for(committed.key), committed.offset)

    async def finish(self, upload: StoredUpload) -> StoreState:
        path = self.path_for(upload.key)
        try:
            await asyncio.to_thread(_truncate_and_flush, path, upload.offset)
        except OSError as error:
            raise StorageError(f"cannot finish upload file: {error.strerror}") from error
        return dict(upload.state)

    async def terminate(self, upload: StoredUpload) -> None:
        await self.remove_key(upload.key)

    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> ByteStream:
        path = self.path_for(upload.key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as error:
            raise BytesMissing("upload file is missing") from error
        except OSError as error:
            raise StorageError(f"cannot read upload file: {error.strerror}") from error
        try:
            # Checked before the first byte is given, so a reader can refuse before it answers.
            if os.fstat(handle.fileno()).st_size <= byte_range.end:
                raise BytesMissing("upload file is shorter than its recorded size")
            handle.seek(byte_range.start)
            remaining = byte_range.length
            while remaining > 0:
                data = await asyncio.to_thread(handle.read, min(READ_CHUNK, remaining))
                if not data:
                    raise BytesMissing("upload file is shorter than its recorded size")
                remaining -= len(data)
                yield data
        finally:
            handle.close()

    async def concatenate(self, key: str, parts: Sequence[StoredUpload]) -> StoreState:
        target = self.path_for(key)
        sources = [(self.path_for(part.key), part.offset) for part in parts]
        needed = sum(size for _, size in sources)
        free = shutil.disk_usage(self.root).free
        if needed > free:
            raise StorageFull(
                f"not enough disk space to assemble the upload: {needed} bytes needed, {free} free"
            )
        try:
            await asyncio.to_thread(_concatenate_files, target, sources)
        except OSError as error:
            raise StorageError(f"cannot concatenate uploads: {error.strerror}") from error
        return {}

    async def list_keys(self, older_than: datetime) -> list[str]:
        """Keys whose file, and sidecar folder, were last changed before `older_than`; a
        sidecar folder whose upload file is gone counts as its upload's key. (A scan of the
        whole folder, so on a worker thread: it must not hold up the event loop's requests.)"""
        return await asyncio.to_thread(_keys_older_than, self.root, older_than.timestamp())

    async def remove_key(self, key: str) -> None:
        """Delete the upload's file and sidecars, on a worker thread: unlinking a large file
        frees its blocks, which can take the file system a while."""
        try:
            await asyncio.to_thread(_remove_upload, self.path_for(key), self._sidecar_dir(key))
        except OSError as error:
            raise StorageError(f"cannot delete upload file: {error.strerror}") from error

    # -- sidecars ----------------------------------------------------------------------------

    async def put_sidecar(self, key: str, name: str, data: bytes) -> None:
        check_sidecar(name, data)
        folder = self._sidecar_dir(key)
        try:
            await asyncio.to_thread(_write_atomically, folder, name, data)
        except OSError as error:
            raise StorageError(f"cannot write sidecar {name}: {error.strerror}") from error

    async def read_sidecar(self, key: str, name: str) -> bytes | None:
        check_sidecar(name)
        path = self._sidecar_dir(key) / name
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageError(f"cannot read sidecar {name}: {error.strerror}") from error

    def _sidecar_dir(self, key: str) -> Path:
        return self.path_for(key).with_name(key + SIDECAR_SUFFIX)

    async def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"storage directory {self.root} is not writable")

    async def close(self) -> None:
        return None


def _write_all(fd: int, chunks: list[bytes], position: int) -> int:
    """Write the chunks in order from `position`; returns the position after them."""
    for chunk in chunks:
        written = os.pwrite(fd, chunk, position)
        position += written
        if written < len(chunk):  # a short write (rare): the rest through a view, no copies
            view = memoryview(chunk)[written:]
            while view:
                written = os.pwrite(fd, view, position)
                view = view[written:]
                position += written
    return position


def _refuse_gap(fd: int, committed: int) -> os.stat_result:
    """The file's status; fails when it is shorter than its committed offset (a machine crash
    took its unflushed tail): writing or cutting at that offset would fill the gap with zeros."""
    status = os.fstat(fd)
    if status.st_size < committed:
        raise OSError(0, "upload file is shorter than its committed offset")
    return status


def _truncate_and_flush(path: Path, size: int) -> None:
    """Cut the file to `size` (dropping what an abandoned write left) and flush it to disk."""
    fd = os.open(path, os.O_WRONLY)
    try:
        _refuse_gap(fd, size)
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(folder: Path, name: str, data: bytes) -> None:
    """Write `folder/name` whole or not at all: a temporary file, fsync, then rename."""
    folder.mkdir(exist_ok=True)
    temporary = folder / f".{name}.partial"
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, folder / name)


def _keys_older_than(root: Path, cutoff: float) -> list[str]:
    newest: dict[str, float] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_file():
                key = entry.name
            elif entry.is_dir() and entry.name.endswith(SIDECAR_SUFFIX):
                key = entry.name.removesuffix(SIDECAR_SUFFIX)
            else:
                continue
            try:
                changed = entry.stat().st_mtime
            except FileNotFoundError:  # removed while scanning (another cleaner, a termination)
                continue
            newest[key] = max(newest.get(key, 0.0), changed)
    return sorted(key for key, changed in newest.items() if key and changed < cutoff)


def _remove_upload(path: Path, sidecars: Path) -> None:
    if sidecars.is_dir():
        shutil.rmtree(sidecars)
    path.unlink(missing_ok=True)


def _concatenate_files(target: Path, sources: list[tuple[Path, int]]) -> None:
    with target.open("wb") as out:
        for path, size in sources:
            with path.open("rb") as source:
                copied = _copy_exactly(source, out, size)
                if copied != size:
                    raise OSError(0, f"partial upload {path.name} is shorter than recorded")
        out.flush()
        os.fsync(out.fileno())


def _copy_exactly(source: BinaryIO, out: BinaryIO, size: int) -> int:
    remaining = size
    while remaining > 0:
        data = source.read(min(1024 * 1024, remaining))
        if not data:
            break
        out.write(data)
        remaining -= len(data)
    return size - remaining
