"""Starting the processes under test and watching them: free ports, readiness, CPU and RSS.

The service runs as a real `video-upload serve` subprocess (via `python -m video_upload.cli`, so
the measured process tree is exactly the server's) in its own temporary working directory, so no
`.env` of the checkout leaks in. `Monitor` samples the RSS of the whole process tree in a
background thread and reads the tree's CPU times at the start and end of a measured run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent

# glibc's malloc moves its mmap and trim thresholds as a process runs. In a process as small as
# the raw sink that can mean every request body's buffer is handed back to the kernel and faulted
# in again, message after message: measured here, the sink's CPU per GiB went between 0.68 and
# 1.96 from one run to the next, and its MB/s with it, so the "ceiling" was allocator luck. Every
# server under test runs with the same fixed thresholds (the service's own numbers did not move).
ALLOCATOR_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(8 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Subprocess:
    """A child process with its log file; `stop()` ends it (SIGTERM, then SIGKILL)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    base_url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    pythonpath: str | None = None,
) -> Subprocess:
    """Start `argv` with `env` added to this environment (and `ALLOCATOR_ENV` unless the
    environment sets it); output goes to `cwd/<name>.log`."""
    full_env = {**ALLOCATOR_ENV, **os.environ, **env}
    paths = [p for p in (pythonpath, str(REPO_ROOT), full_env.get("PYTHONPATH")) if p]
    full_env["PYTHONPATH"] = os.pathsep.join(paths)
    log_path = cwd / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            list(argv), cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    return Subprocess(name, popen, log_path)


def wait_ready(proc: Subprocess, url: str, timeout: float = 60.0) -> None:
    """Poll `url` until it answers 200; raise with the process log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f}s:\n{proc.log_tail()}")


def start_service(
    workdir: Path, env: Mapping[str, str], *, pythonpath: str | None = None
) -> Subprocess:
    """`video-upload serve` on a free loopback port, with `workdir` as its cwd."""
    port = free_port()
    argv = [sys.executable, "-m", "video_upload.cli", "serve", "--host", "127.0.0.1"]
    proc = spawn(
        "service", [*argv, "--port", str(port)], cwd=workdir, env=env, pythonpath=pythonpath
    )
    proc.base_url = f"http://127.0.0.1:{port}"
    wait_ready(proc, f"{proc.base_url}/healthz")
    return proc


def start_sink(workdir: Path, *, fsync: bool = False, durable: bool = False) -> Subprocess:
    """The raw ASGI sink (`bench.sink`) under uvicorn, configured like `video-upload serve`."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.sink", "--port", str(port), "--dir", str(workdir / "sink")]
    if fsync:
        argv.append("--fsync")
    if durable:
        argv.append("--durable")
    proc = spawn("sink", argv, cwd=workdir, env={})
    proc.base_url = f"http://127.0.0.1:{port}"
    wait_ready(proc, f"{proc.base_url}/healthz")
    return proc


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def tree_rss(pid: int) -> int:
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total


@dataclass
class Usage:
    """What a monitored run cost the server: CPU seconds, RSS before and at its peak."""

    cpu_seconds: float = 0.0
    rss_start: int = 0
    rss_peak: int = 0
    samples: int = 0
    rss_series: list[tuple[float, int]] = field(default_factory=list)


class Monitor:
    """Samples the RSS of a process tree every `interval` seconds while the block runs."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.usage = Usage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._t0 = 0.0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._record()

    def _record(self) -> None:
        rss = tree_rss(self.pid)
        self.usage.samples += 1
        self.usage.rss_peak = max(self.usage.rss_peak, rss)
        self.usage.rss_series.append((round(time.monotonic() - self._t0, 3), rss))

    def __enter__(self) -> Usage:
        self._t0 = time.monotonic()
        self.usage.rss_start = tree_rss(self.pid)
        self.usage.rss_peak = self.usage.rss_start
        self._cpu0 = tree_cpu_seconds(self.pid)
        self._thread.start()
        return self.usage

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._record()
        self.usage.cpu_seconds = tree_cpu_seconds(self.pid) - self._cpu0


@contextlib.contextmanager
def running(proc: Subprocess) -> Iterator[Subprocess]:
    try:
        yield proc
    finally:
        proc.stop()
