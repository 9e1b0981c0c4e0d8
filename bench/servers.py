"""The servers a section measures, and what they cost: CPU time and the RSS of the process tree.

The service runs as a real `video-upload serve` (`python -m video_upload serve`), the raw sink
under uvicorn (`bench.sink`). Each gets a throwaway working directory (its cwd, so no `.env` of
the checkout leaks in; its DATA_DIR, SQLite file and local store), a fresh JWT secret and a free
loopback port, and is stopped and removed when its `with` block ends (`BENCH_KEEP_WORKDIRS=1`
keeps the directories and the logs).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench.client import TusUser, mint_token, new_client
from bench.pg import throwaway_database

REPO_ROOT = Path(__file__).resolve().parent.parent

# `--server-pythonpath DIR`: the service's code comes from DIR first (another checkout's src/),
# so two commits can be measured back to back with the same benchmark.
SERVER_PYTHONPATH: list[str] = []

# glibc's malloc moves its mmap and trim thresholds as a process runs; in a process as small as
# the raw sink that can hand every body buffer back to the kernel and fault it in again, and the
# sink's CPU per GiB then varies threefold from run to run. Every server runs with the same fixed
# thresholds, so the ceiling is not the allocator's luck.
ALLOCATOR_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(8 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(env: Mapping[str, str], pythonpath: str | None = None) -> dict[str, str]:
    """This environment with `env` and `ALLOCATOR_ENV` added, the checkout on PYTHONPATH (after
    `pythonpath`, or `--server-pythonpath`, when given)."""
    full = {**ALLOCATOR_ENV, **os.environ, **env}
    first = pythonpath or (SERVER_PYTHONPATH[0] if SERVER_PYTHONPATH else None)
    full["PYTHONPATH"] = os.pathsep.join(
        p for p in (first, str(REPO_ROOT), full.get("PYTHONPATH")) if p
    )
    return full


@dataclass
class Server:
    """A running server: its process, directory, URL and the JWT secret it accepts."""

    name: str
    popen: subprocess.Popen[bytes]
    workdir: Path
    base_url: str
    jwt_secret: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        text = (self.workdir / f"{self.name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def client(self, connections: int = 16) -> httpx.AsyncClient:
        return new_client(self.base_url, connections)

    async def user(self, client: httpx.AsyncClient) -> TusUser:
        """A new user with a practice session of its own."""
        user = TusUser(client, mint_token(self.jwt_secret, f"bench-{secrets.token_hex(4)}"))
        await user.open_session()
        return user


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP_WORKDIRS"):
            print(f"  (kept {path})")
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running(
    name: str, argv: Sequence[str], directory: Path, env: Mapping[str, str], ready_path: str
) -> Iterator[Server]:
    """Start `argv` in `directory` (output in `<name>.log` there), wait until `ready_path`
    answers 200 on its port (the last argument of `argv`), stop it afterwards."""
    port = int(argv[-1])
    with (directory / f"{name}.log").open("wb") as log:
        popen = subprocess.Popen(
            list(argv), cwd=directory, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(name, popen, directory, f"http://127.0.0.1:{port}", env.get("JWT_SECRET", ""))
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        server.stop()


def _wait_ready(server: Server, path: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + path, timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f} s:\n{server.log_tail()}")


def service_env(directory: Path) -> dict[str, str]:
    """The service's settings for a throwaway `directory`: SQLite and the local store there."""
    return {
        "DATA_DIR": str(directory / "data"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'data' / 'video-upload.db'}",
        "STORAGE_BACKEND": "local",
        "LOCAL_STORAGE_PATH": str(directory / "data" / "uploads"),
        "JWT_SECRET": secrets.token_urlsafe(32),
        "MAX_VIDEO_SIZE_MB": "1024",
    }


@contextlib.contextmanager
def service(
    name: str, *, postgres: bool = False, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """`video-upload serve` on SQLite (or a throwaway PostgreSQL database) and the local store,
    unless `extra_env` says otherwise."""
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(workdir(name))
        env = service_env(directory)
        if postgres:
            env["DATABASE_URL"] = stack.enter_context(throwaway_database())
        env.update(extra_env or {})
        port = str(free_port())
        argv = [sys.executable, "-m", "video_upload", "serve", "--host", "127.0.0.1", "--port"]
        yield stack.enter_context(
            running(name, [*argv, port], directory, child_env(env), "/healthz")
        )


@contextlib.contextmanager
def sink(name: str = "sink", *, fsync: bool = False, durable: bool = False) -> Iterator[Server]:
    """The raw ASGI sink (`fsync`: an fsync per PATCH; `durable`: flushed like the local store's
    default, writeback started per PATCH and an fsync when the upload is complete)."""
    with workdir(name) as directory:
        argv = [sys.executable, "-m", "bench.sink", "--dir", str(directory / "sink")]
        argv += ["--fsync"] if fsync else []
        argv += ["--durable"] if durable else []
        env = child_env({"JWT_SECRET": secrets.token_urlsafe(32)}, str(REPO_ROOT))
        with running(name, [*argv, "--port", str(free_port())], directory, env, "/healthz") as s:
            yield s


def _tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += sum(proc.cpu_times()[:2])  # user and system
    return total


def tree_rss(pid: int) -> int:
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total


class Monitor:
    """While the block runs, samples the RSS of a process tree every `interval` seconds; reads
    the tree's CPU time at both ends (`cpu_seconds`, `rss_start`, `rss_peak`, in bytes)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.cpu_seconds, self.rss_start, self.rss_peak = 0.0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.rss_peak = max(self.rss_peak, tree_rss(self.pid))

    def __enter__(self) -> Monitor:
        self.rss_start = self.rss_peak = tree_rss(self.pid)
        self.cpu_seconds = -tree_cpu_seconds(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.rss_peak = max(self.rss_peak, tree_rss(self.pid))
        self.cpu_seconds += tree_cpu_seconds(self.pid)
