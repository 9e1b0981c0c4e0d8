"""The disk alone: how fast this machine makes a scenario's bytes durable, with no server at all.

The scenario's bytes, already in memory, are written to new files in its PATCH-sized pieces the
way the local store writes them by default: each piece with `os.write`, writeback started after
it, one fsync per file once everything is written. No HTTP, no client competing for the CPU, no
event loop: at the same moment no server that keeps its bytes as the local store does could be
faster, so disk alone / raw sink is the highest service / raw sink ratio the disk allows. (The
raw sink never waits for the disk: its bytes are still in the page cache when it answers.)

It runs right after each round's servers, so one reading can catch the disk still busy with
their writes; read it over the rounds, as the servers' own figures.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

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
                rest = piece
                while rest:
                    rest = rest[os.write(fd, rest) :]
                start_writeback(fd, offset, len(piece))
        for fd in descriptors:
            os.fsync(fd)
        return time.perf_counter() - started
    finally:
        for fd in descriptors:
            os.close(fd)


def durable_mb_per_s(payload: memoryview, *, files: int, chunk: int) -> float:
    """`write_durably` in a temporary directory (beside the servers' own), as MB/s (10^6 bytes
    per second) over all the files' bytes; the files are removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-disk-") as directory:
        seconds = write_durably(Path(directory), payload, files=files, chunk=chunk)
    return files * len(payload) / seconds / MB
