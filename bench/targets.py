"""The servers a section talks to: the service (SQLite or PostgreSQL, local or S3) and the sink.

Each gets its own temporary directory (its cwd, DATA_DIR and local store), a fresh JWT secret and
a loopback port; everything is stopped and removed when the `with` block ends.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.client import TusUser, mint_token, new_client
from bench.pg import throwaway_database
from bench.procs import Subprocess, start_service, start_sink

# Set with `--server-pythonpath` to benchmark a scratch copy of the service's source.
SERVER_PYTHONPATH: list[str] = []


@dataclass
class Target:
    """A running server under test."""

    name: str
    proc: Subprocess
    workdir: Path
    jwt_secret: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return self.proc.base_url

    def client(self, connections: int = 16) -> httpx.AsyncClient:
        return new_client(self.base_url, connections)

    async def user(self, client: httpx.AsyncClient) -> TusUser:
        """A new user with a practice session of its own."""
        user = TusUser(client, mint_token(self.jwt_secret, f"bench-{secrets.token_hex(4)}"))
        await user.open_session()
        return user


@contextmanager
def _workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP_WORKDIRS"):
            print(f"  (kept {path})")
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def service(
    name: str,
    *,
    database: str = "sqlite",
    extra_env: Mapping[str, str] | None = None,
    pythonpath: str | None = None,
) -> Iterator[Target]:
    """`video-upload serve` with `database` ("sqlite" or "postgres") and the local store unless
    `extra_env` says otherwise; its code from `pythonpath` first when given (else from
    `--server-pythonpath`, else this checkout)."""
    with ExitStack() as stack:
        workdir = stack.enter_context(_workdir(name))
        secret = secrets.token_urlsafe(32)
        env = {
            "DATA_DIR": str(workdir / "data"),
            "LOCAL_STORAGE_PATH": str(workdir / "data" / "uploads"),
            "STORAGE_BACKEND": "local",
            "JWT_SECRET": secret,
            "MAX_VIDEO_SIZE_MB": "1024",
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'data' / 'video-upload.db'}",
        }
        if database == "postgres":
            env["DATABASE_URL"] = stack.enter_context(throwaway_database())
        env.update(extra_env or {})
        if pythonpath is None and SERVER_PYTHONPATH:
            pythonpath = SERVER_PYTHONPATH[0]
        proc = start_service(workdir, env, pythonpath=pythonpath)
        stack.callback(proc.stop)
        yield Target(name, proc, workdir, secret)


@contextmanager
def sink(name: str = "sink", *, fsync: bool = False, durable: bool = False) -> Iterator[Target]:
    """The raw ASGI sink under uvicorn (`fsync`: fsync after every PATCH; `durable`: flushed like
    the local store's default, writeback started per PATCH and an fsync at the upload's end)."""
    with _workdir(name) as workdir:
        proc = start_sink(workdir, fsync=fsync, durable=durable)
        try:
            yield Target(name, proc, workdir, secrets.token_urlsafe(32))
        finally:
            proc.stop()
