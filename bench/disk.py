"""The disk alone: how fast this machine makes a scenario's bytes durable, with no server at all.

The scenario's bytes, already in memory, are written to new files in its PATCH-sized pieces the
way the local store writes them by default: each piece with `os.write`, writeback started after
it, and one fsync per file once every piece is written. It runs in the benchmark's own process,
with no HTTP, no client competing for the CPU and no event loop, so at the same moment no
server that keeps its bytes as the local store does (the service, the sink flushed at the end)
could be faster: disk alone / raw sink is the highest service / raw sink ratio the disk allows
with that durability. The raw sink itself never waits for the disk; its bytes are still in the
page cache when its last PATCH is answered.

It runs after each round's servers, not beside them, so one reading can also catch the disk
still busy with their writes: in one round of the tenth session's 04:08 run it read 432 MB/s
against 1,333 to 1,590 in the others, below the servers of the same round. Read it over the
rounds (the report gives them all), as the servers' own figures.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.host_memory import recycle_free_pages
from bench.stats import MB
from video_upload.storage.writeback import start_writeback


def write_durably(directory: Path, payload: memoryview, *, files: int, chunk: int) -> float:
    """Seconds to write `payload` to `files` new files in `directory`, `chunk` bytes at a time
    (the files in turn, piece by piece), starting writeback after every piece and fsyncing each
    file at the end. The files are left in `directory`."""
    paths = [directory / f"disk-{index}" for index in range(files)]
    descriptors = [os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) for path in paths]
    try:
        started = time.perf_counter()
        for offset in range(0, len(payload), chunk):
            piece = payload[offset : offset + chunk]
            for fd in descriptors:
                _write_all(fd, piece)
                start_writeback(fd, offset, len(piece))
        for fd in descriptors:
            os.fsync(fd)
        return time.perf_counter() - started
    finally:
        for fd in descriptors:
            os.close(fd)


def _write_all(fd: int, piece: memoryview) -> None:
    while piece:
        piece = piece[os.write(fd, piece) :]


def durable_mb_per_s(payload: memoryview, *, files: int, chunk: int) -> float:
    """`write_durably` in a fresh temporary directory (where the servers' own directories are),
    removed with its files afterwards, as MB/s (10^6 bytes per second) over all their bytes.
    The page cache it fills is made of pages freed a moment before (`recycle_free_pages`)."""
    with tempfile.TemporaryDirectory(prefix="bench-disk-") as directory:
        recycle_free_pages(files * len(payload))
        seconds = write_durably(Path(directory), payload, files=files, chunk=chunk)
    return files * len(payload) / seconds / MB
