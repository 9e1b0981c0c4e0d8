"""The servers a section measures, each in a throwaway directory on a free loopback port, and
what they cost: CPU time and the RSS of the process tree (docs/performance.md, "Measuring")."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.client import TusUser, mint_token
from bench.seaweedfs import terminate

REPO_ROOT = Path(__file__).resolve().parent.parent
# throwaway databases are made and dropped through it
ADMIN_DSN = os.environ.get(
    "BENCH_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# `--server-pythonpath DIR`: the service's code comes from DIR first (another checkout's src/),
# so two commits can be measured back to back with the same benchmark.
SERVER_PYTHONPATH: list[str] = []

# glibc's malloc moves its mmap and trim thresholds as a process runs; in a process as small as
# the raw sink that can hand every body buffer back to the kernel and fault it in again, and the
# sink's CPU per GiB then varies threefold from run to run. Fixed thresholds for every server.
ALLOCATOR_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(8 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20),
}


def _admin(statement: str) -> None:
    """Run one statement on the admin database, on a loop of its own (callable from a loop)."""

    async def execute() -> None:
        connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, execute()).result()


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        _admin("SELECT 1")
    except Exception as error:  # OSError for refusals, asyncpg's own errors for the rest
        return f"PostgreSQL at {ADMIN_DSN.rsplit('@', 1)[-1]} is unreachable: {error}"
    return None


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh PostgreSQL database; drop it afterwards."""
    name = f"video_upload_bench_{secrets.token_hex(6)}"
    _admin(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def child_env(env: Mapping[str, str], pythonpath: str | None = None) -> dict[str, str]:
    """This environment plus `ALLOCATOR_ENV` and `env`; PYTHONPATH: `pythonpath` (or
    `--server-pythonpath`) first, then this checkout."""
    full = {**ALLOCATOR_ENV, **os.environ, **env}
    first = pythonpath or (SERVER_PYTHONPATH[0] if SERVER_PYTHONPATH else None)
    paths = (first, str(REPO_ROOT), full.get("PYTHONPATH"))
    full["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return full


@dataclass
class Server:
    """A running server: its process, directory, URL and the JWT secret it accepts."""

    name: str
    pid: int
    workdir: Path
    base_url: str
    jwt_secret: str

    def client(self, connections: int = 16) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=300.0, trust_env=False
        )

    async def user(self, client: httpx.AsyncClient) -> TusUser:
        """A new user with a practice session of its own."""
        user = TusUser(client, mint_token(self.jwt_secret, f"bench-{secrets.token_hex(4)}"))
        await user.open_session()
        return user


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A throwaway directory, removed afterwards unless BENCH_KEEP_WORKDIRS is set."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP_WORKDIRS"):
            print(f"  (kept {path})")
        else:
            shutil.rmtree(path, ignore_errors=True)


def _healthy(base_url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base_url}/healthz", timeout=2, trust_env=False).status_code == 200
    return False


@contextlib.contextmanager
def running(
    name: str, argv: Sequence[str], directory: Path, env: Mapping[str, str]
) -> Iterator[Server]:
    """Start `argv` plus `--port P` in `directory` (output in `<name>.log` there), wait until
    `/healthz` answers 200, stop it afterwards (SIGTERM, SIGKILL after 15 s)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log = directory / f"{name}.log"
    with log.open("wb") as output:
        popen = subprocess.Popen(
            [*argv, "--port", str(port)],
            cwd=directory,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _healthy(base_url):
            if popen.poll() is not None or time.monotonic() > deadline:
                state = "exited early" if popen.poll() is not None else "not ready after 120 s"
                tail = log.read_text(errors="replace").splitlines()[-30:]
                raise RuntimeError(f"{name} {state}:\n" + "\n".join(tail))
            time.sleep(0.1)
        yield Server(name, popen.pid, directory, base_url, env.get("JWT_SECRET", ""))
    finally:
        terminate(popen, 15)


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
    unless `extra_env` says otherwise. Its directory is its cwd, so no `.env` leaks in."""
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(workdir(name))
        env = service_env(directory)
        if postgres:
            env["DATABASE_URL"] = stack.enter_context(throwaway_database())
        env.update(extra_env or {})
        argv = [sys.executable, "-m", "video_upload", "serve", "--host", "127.0.0.1"]
        yield stack.enter_context(running(name, argv, directory, child_env(env)))


@contextlib.contextmanager
def sink(name: str = "sink", *, fsync: bool = False, durable: bool = False) -> Iterator[Server]:
    """The raw ASGI sink (`bench.sink`), always this checkout's."""
    with workdir(name) as directory:
        argv = [sys.executable, "-m", "bench.sink", "--dir", str(directory / "sink")]
        argv += ["--fsync"] * fsync + ["--durable"] * durable
        env = child_env({"JWT_SECRET": secrets.token_urlsafe(32)}, str(REPO_ROOT))
        with running(name, argv, directory, env) as server:
            yield server


async def each_server(
    keys: Mapping[str, str],
    measure: Callable[[Server], Awaitable[dict[str, Any]]],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """`measure` on the raw sink, the service on SQLite and on PostgreSQL (skipped when it does
    not answer) in turn; `keys` maps "sink", "sqlite" and "postgres" to their results' names."""
    results: dict[str, Any] = {}
    for kind, key in keys.items():
        if kind == "postgres" and (reason := postgres_unavailable()):
            results[key] = {"skipped": reason}
            log(f"  {key:<16} skipped: {reason}")
            continue
        postgres = kind == "postgres"
        with sink() if kind == "sink" else service(f"service_{kind}", postgres=postgres) as server:
            results[key] = await measure(server)
    return results


def tree_usage(pid: int, cpu: bool = True) -> tuple[float, int]:
    """CPU seconds (user and system; 0 unless `cpu`) and RSS bytes of a process tree."""
    seconds, rss = 0.0, 0
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                rss += proc.memory_info().rss
                if cpu:
                    seconds += sum(proc.cpu_times()[:2])
    return seconds, rss


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
            self.rss_peak = max(self.rss_peak, tree_usage(self.pid, cpu=False)[1])

    def __enter__(self) -> Monitor:
        cpu, self.rss_start = tree_usage(self.pid)
        self.cpu_seconds, self.rss_peak = -cpu, self.rss_start
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        cpu, rss = tree_usage(self.pid)
        self.cpu_seconds, self.rss_peak = self.cpu_seconds + cpu, max(self.rss_peak, rss)
