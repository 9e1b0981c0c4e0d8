"""Asking the kernel to start writing a file's range to disk now, without waiting for it.

The local store calls this after every write so that, by the time an upload completes, most of
it is already on disk and the fsync before "complete" is short, however large the file. It calls
it through `start_writeback_soon`, on the event loop's next turn: queueing the pages for the disk
costs the kernel real work (about 0.1 to 0.3 ms per MiB on the benchmark machine), and done
inside the request it delayed the response by that much, while the client waited to send its
next chunk. On the next turn, the response to the request that wrote the bytes has normally gone
out already.

On Linux this is `sync_file_range(SYNC_FILE_RANGE_WRITE)`, called through libc (Python has no
binding for it): it queues the range's dirty pages for writeback and returns. The fallback, where
libc lacks that call, is `posix_fadvise(POSIX_FADV_DONTNEED)`, which starts the same writeback
but then also tries to drop the range from the page cache; on Linux that means draining every
CPU's page lists, and waiting for it, whenever a page is still being written (almost always,
right after a write), and later reads of the file (the probe at completion) go to the disk.
Where neither exists the call does nothing: the fsync at completion still makes the file durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
from collections.abc import Callable

SYNC_FILE_RANGE_WRITE = 2

StartWriteback = Callable[[int, int, int], None]


def _sync_file_range() -> StartWriteback | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int

    def start(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, SYNC_FILE_RANGE_WRITE)  # a failure is only a missed hint

    return start


def _fadvise(fd: int, offset: int, length: int) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not every platform has it
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


start_writeback: StartWriteback = _sync_file_range() or _fadvise
"""`start_writeback(fd, offset, length)`: a hint; it never raises and never waits for the disk."""


def start_writeback_soon(fd: int, offset: int, length: int) -> None:
    """`start_writeback(fd, offset, length)` on the running event loop's next turn, on a
    duplicate of `fd`, so the caller may close its own descriptor at once. A hint: when no
    descriptor is left to duplicate, it is skipped (the fsync at completion still flushes)."""
    try:
        duplicate = os.dup(fd)
    except OSError:
        return
    asyncio.get_running_loop().call_soon(_start_and_close, duplicate, offset, length)


def _start_and_close(fd: int, offset: int, length: int) -> None:
    try:
        start_writeback(fd, offset, length)
    finally:
        os.close(fd)
