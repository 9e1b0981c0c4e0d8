"""Profiling the server under upload load with py-spy, and reading the samples.

`py-spy record --format raw --threads` writes collapsed stacks (one line per distinct stack:
`thread (id): name;frame;frame;... count`). `summarise` turns them into where the server's time
went, by layer (the innermost frame that belongs to a known layer decides), and how much of it
sits under the service's own functions, in milliseconds of sampled time per PATCH.

Samples are taken per thread, so time on the SQLite worker thread and on fsync threads counts
next to the event loop's; py-spy leaves idle threads out. A sample whose innermost Python frame is
the event loop itself (`Runner.run`) is time in native code called by the loop: uvloop's socket
reads and transport callbacks, and the httptools parser.

SQLAlchemy's asyncio layer runs each statement's synchronous part in a greenlet, whose frames py-spy
cannot join to the request's stack: the per-function (inclusive) figures therefore leave out most
database work, which the per-layer figures ("SQLAlchemy + DB driver", "SQLite worker thread")
count in full. py-spy samples in its default (blocking) mode, which pauses the server briefly per
sample; the MB/s while profiled is reported apart and never mixed with the throughput section.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.stats import MIB
from bench.targets import Target
from bench.throughput import make_payload

RATE = 250  # samples per second

# (category, predicate on "function (file:line)") — checked from the innermost frame outwards.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("fsync", ("fsync (", "fdatasync (")),
    ("file writes (os.write)", ("_write_all (",)),
    ("JWT verification", ("jwt/", "video_upload/auth.py")),
    ("logging (access log)", ("logging/", "uvicorn/logging.py")),
    ("SQLAlchemy + DB driver", ("sqlalchemy/", "aiosqlite/", "asyncpg/", "video_upload/db/")),
    ("service code (video_upload)", ("video_upload/",)),
    ("FastAPI / Starlette", ("fastapi/", "starlette/")),
    ("uvicorn HTTP protocol (Python)", ("uvicorn/protocols/",)),
]
SKIPPED = ("asyncio/", "contextlib", "concurrent/", "threading.py", "<frozen", "typing.py")


def _aiosqlite_waiting_frame() -> str:
    """The frame of aiosqlite's worker thread blocked on its queue (`tx.get()`, a C call, so
    the Python frame is the loop itself at that line), e.g. "(aiosqlite/core.py:59)"."""
    try:
        import aiosqlite.core

        lines, first = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)
    except (ImportError, AttributeError, OSError, TypeError):
        return "_connection_worker_thread (aiosqlite/core.py:?"
    for offset, line in enumerate(lines):
        if ".get()" in line:
            return f"_connection_worker_thread (aiosqlite/core.py:{first + offset})"
    return "_connection_worker_thread (aiosqlite/core.py:?"


# Innermost frames of threads that merely wait for work (py-spy does not always see them idle:
# in its default, blocking mode, a thread blocked in C, like aiosqlite's worker waiting on its
# queue, is sampled as if it ran; counting those made the SQLite thread look like a quarter of
# the server's time when it was about 1 %).
WAITING = (
    "Condition.wait (threading.py",
    "Queue.get (queue.py",
    "_worker (concurrent/futures",
    _aiosqlite_waiting_frame(),
)

# Functions whose inclusive time is reported (matched as "name (file").
WATCHED = {
    "UploadService.write": "UploadService.write (video_upload/uploads/service.py",
    "  owned_upload (SELECT)": "UploadService.owned_upload (video_upload/uploads/service.py",
    "  lease take": "WriterLeases._take (video_upload/uploads/leases.py",
    "  lease release": "WriterLeases._release (video_upload/uploads/leases.py",
    "  lease heartbeat": "WriterLeases._heartbeat (video_upload/uploads/leases.py",
    "  offset commit": "UploadService._commit_write (video_upload/uploads/service.py",
    "  LocalStore.write": "LocalStore.write (",
    "  S3Store.write": "S3Store.write (",
    "  GuardedBody.chunks": "GuardedBody.chunks (video_upload/uploads/streams.py",
    "  body_stream (request.stream)": "body_stream (video_upload/tus/routes.py",
    "authenticated (JWT)": "authenticated (video_upload/tus/routes.py",
}


def _classify(thread: str, frames: list[str]) -> str:
    if "_connection_worker_thread" in thread:
        return "SQLite worker thread (aiosqlite)"
    if "uvloop_" in thread or "ThreadPoolExecutor" in thread or "asyncio_" in thread:
        return "thread pool (asyncio.to_thread: fsync)"
    if frames and frames[-1].startswith("Runner.run (asyncio/runners.py"):
        return "event loop native (uvloop I/O, httptools)"
    for frame in reversed(frames):
        for category, needles in LAYERS:
            if any(needle in frame for needle in needles):
                return category
        if any(skip in frame for skip in SKIPPED):
            continue
    if "MainThread" not in thread:
        return "other threads"
    return "other"


def summarise(raw: Path, patches: int, rate: int = RATE) -> dict[str, Any]:
    """Per-layer and per-function sampled milliseconds (per PATCH and in total) from raw stacks."""
    layers: collections.Counter[str] = collections.Counter()
    watched: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        if frames and frames[-1].startswith(WAITING):
            continue
        total += count
        layers[_classify(thread, frames)] += count
        for label, needle in WATCHED.items():
            if any(needle in frame for frame in frames):
                watched[label] += count

    def ms_per_patch(samples: int) -> float:
        return samples / rate * 1000 / max(patches, 1)

    return {
        "sampled_seconds": total / rate,
        "patches": patches,
        "layers": {
            name: {"share": count / total, "ms_per_patch": ms_per_patch(count)}
            for name, count in layers.most_common()
        }
        if total
        else {},
        "functions": {
            label: {"share": watched[label] / total, "ms_per_patch": ms_per_patch(watched[label])}
            for label in WATCHED
            if watched[label]
        }
        if total
        else {},
    }


def py_spy() -> str | None:
    return shutil.which("py-spy")


@contextlib.contextmanager
def _sampling(argv: list[str], output: Path) -> Iterator[None]:
    """Run py-spy for the duration of the block; stop it with SIGINT so it writes `output`."""
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            spy.send_signal(signal.SIGINT)
        try:
            _, stderr = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, stderr = spy.communicate()
    if not output.exists():
        message = stderr.decode(errors="replace")[-500:]
        raise RuntimeError(f"py-spy wrote no profile (exit {spy.returncode}): {message}")


async def record(
    target: Target, size: int, chunk: int, output: Path, *, fmt: str = "raw", repeats: int = 1
) -> float:
    """Upload `size` bytes in `chunk` PATCHes, `repeats` times, while py-spy samples the server;
    returns the MB/s of the last upload (slowed down by the sampling)."""
    argv = [py_spy() or "py-spy", "record", "--pid", str(target.pid), "--rate", str(RATE)]
    argv += ["--format", fmt, "--output", str(output)]
    if fmt == "raw":
        argv.append("--threads")
    payload = make_payload(size)
    with _sampling(argv, output):
        await asyncio.sleep(1.0)  # let py-spy attach
        async with target.client() as client:
            user = await target.user(client)
            for _ in range(repeats):
                started = time.perf_counter()
                url = await user.upload(payload, chunk)
                elapsed = time.perf_counter() - started
                await user.delete(url)
    return size / elapsed / 1e6


async def profile_uploads(
    target: Target,
    size: int,
    chunks: list[int],
    out_dir: Path,
    *,
    flamegraphs: bool,
    repeats: int = 1,
) -> dict[str, Any]:
    """Profile one upload per chunk size; raw stacks summarised, optional SVG flame graphs."""
    if py_spy() is None:
        return {"skipped": "py-spy is not installed (uv run --group bench ...)"}
    os.makedirs(out_dir, exist_ok=True)
    async with target.client() as client:  # warm up: compiled SQL, imports, first-call caches
        user = await target.user(client)
        await user.delete(await user.upload(make_payload(16 * MIB), 1 * MIB))
    profiles: dict[str, Any] = {}
    for chunk in chunks:
        name = f"{target.name}_{chunk // MIB}mib"
        raw = out_dir / f"{name}.txt"
        speed = await record(target, size, chunk, raw, repeats=repeats)
        summary = summarise(raw, patches=-(-size // chunk) * repeats)
        summary["mb_per_s_while_profiled"] = speed
        summary["raw_stacks"] = str(raw)
        if flamegraphs:
            svg = out_dir / f"{name}.svg"
            await record(target, size, chunk, svg, fmt="flamegraph", repeats=repeats)
            summary["flamegraph"] = str(svg)
        profiles[f"{chunk // MIB}mib"] = summary
    return profiles
