"""How long `video-upload cleanup` takes for N expired uploads (rows and files) in a throwaway
SQLite database, less the same command's time on an empty one (docs/performance.md)."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.servers import child_env, service_env, workdir


def _command(directory: Path, env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run `video-upload ARGS` in `directory`; its wall time and standard output."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "video_upload", *args]
    done = subprocess.run(
        command, cwd=directory, env=child_env(env), capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"video-upload {' '.join(args)} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def insert_expired(database_url: str, store: Path, count: int) -> None:
    """`count` unfinished uploads that expired a day ago, each with a file in `store` (the
    other columns take the model's defaults)."""
    from sqlalchemy import create_engine, insert

    from video_upload.persistence.models import VideoRow

    expired = datetime.now(UTC) - timedelta(days=1)
    store.mkdir(parents=True, exist_ok=True)
    ids = [secrets.token_hex(16) for _ in range(count)]
    for upload_id in ids:
        (store / upload_id).write_bytes(b"")
    common = {"user_id": "bench-cleanup", "upload_length": 1024, "status": "uploading"}
    times = {"upload_expires_at": expired, "updated_at": expired}
    times["created_at"] = expired - timedelta(hours=1)
    rows = [{**common, **times, "upload_id": i, "storage_key": i} for i in ids]
    engine = create_engine(database_url.replace("sqlite+aiosqlite", "sqlite", 1))
    try:
        with engine.begin() as connection:
            connection.execute(insert(VideoRow), rows)
    finally:
        engine.dispose()


def measure(count: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    with workdir("cleanup") as directory:
        env = service_env(directory)
        _command(directory, env, "migrate")
        empty_seconds, _ = _command(directory, env, "cleanup")
        store = Path(env["LOCAL_STORAGE_PATH"])
        insert_expired(env["DATABASE_URL"], store, count)
        command_seconds, output = _command(directory, env, "cleanup")
        files_left = sum(1 for _ in store.iterdir())
    found = re.search(r"cleaned (\d+) expired", output)
    if found is None:
        raise RuntimeError(f"unexpected output of video-upload cleanup: {output!r}")
    seconds = max(command_seconds - empty_seconds, 0.0)  # less the interpreter's start, imports
    log(
        f"  {count} expired uploads cleaned in {seconds:.2f} s ({seconds / count * 1000:.2f} ms "
        f"each; the command took {command_seconds:.2f} s, {empty_seconds:.2f} s with nothing to do)"
    )
    return {
        "uploads": count,
        "seconds": seconds,
        "per_upload_ms": seconds / count * 1000,
        "command_seconds": command_seconds,
        "empty_command_seconds": empty_seconds,
        "cleaned": int(found.group(1)),
        "files_left": files_left,
    }
