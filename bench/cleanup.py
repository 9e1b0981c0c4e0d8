"""Cleanup of expired uploads: how long `cleanup_expired_uploads()` takes for N of them.

The rows are inserted directly with SQLAlchemy (one executemany) into a freshly migrated SQLite
database, each with an empty file in the local store and an `upload_expires_at` a day in the
past; then `video_upload.maintenance.cleanup.VideoService(...).cleanup_expired_uploads()` is timed.
The service is built from what its constructor asks for, by parameter name (`db`, which takes
the upload service, or settings, session factory, engine, store, clock); if the module or a
parameter is unknown, the section is skipped with the reason.
"""

from __future__ import annotations

import importlib
import inspect
import secrets
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MODULE = "video_upload.maintenance.cleanup"


def _service_class() -> tuple[Any, str | None]:
    try:
        module = importlib.import_module(MODULE)
    except Exception as error:  # an in-progress module may fail in any way
        return None, f"{MODULE} is not importable yet: {type(error).__name__}: {error}"
    cls = getattr(module, "VideoService", None)
    if cls is None or not hasattr(cls, "cleanup_expired_uploads"):
        return None, f"{MODULE} has no VideoService.cleanup_expired_uploads yet"
    return cls, None


def _insert_expired(database_url: str, store_root: Path, count: int) -> None:
    """Insert `count` expired, unfinished uploads (synchronous SQLite driver, one executemany)."""
    from sqlalchemy import create_engine, insert

    from video_upload.db.models import Video

    sync_url = database_url.replace("sqlite+aiosqlite", "sqlite", 1)
    now = datetime.now(UTC)
    expired = now - timedelta(days=1)
    rows = []
    for _ in range(count):
        upload_id = secrets.token_hex(16)
        (store_root / upload_id).write_bytes(b"")
        rows.append(
            {
                "id": uuid.uuid4(),
                "user_id": "bench-cleanup",
                "session_id": None,
                "upload_id": upload_id,
                "upload_offset": 0,
                "upload_length": 1024,
                "upload_completed": False,
                "upload_metadata": {},
                "upload_expires_at": expired,
                "storage_key": upload_id,
                "filename": "take.mp4",
                "content_type": "video/mp4",
                "status": "uploading",
                "created_at": expired - timedelta(hours=1),
                "updated_at": expired,
            }
        )
    engine = create_engine(sync_url)
    try:
        with engine.begin() as connection:
            connection.execute(insert(Video), rows)
    finally:
        engine.dispose()


def _pending_rows(database_url: str) -> int:
    """Rows that are neither deleted nor marked expired."""
    from sqlalchemy import create_engine, func, select

    from video_upload.db.models import Video

    engine = create_engine(database_url.replace("sqlite+aiosqlite", "sqlite", 1))
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(Video).where(Video.status != "expired")
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def _build(cls: Any, candidates: dict[str, Any]) -> tuple[Any, str | None]:
    arguments: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in candidates:
            arguments[name] = candidates[name]
        elif parameter.default is parameter.empty:
            return None, f"VideoService needs a '{name}' the benchmark does not know how to make"
    return cls(**arguments), None


async def measure(count: int, log: Any = print) -> dict[str, Any]:
    cls, reason = _service_class()
    if reason:
        log(f"  skipped: {reason}")
        return {"skipped": reason, "uploads": count}
    from video_upload.config import Settings
    from video_upload.db.engine import create_engine, create_session_factory, migrate_async
    from video_upload.storage.local import LocalStore
    from video_upload.uploads.service import UploadService, utcnow

    workdir = Path(tempfile.mkdtemp(prefix="bench-cleanup-"))
    try:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=workdir,
            local_storage_path=workdir / "uploads",
            jwt_secret=secrets.token_urlsafe(32),
        )
        url = settings.resolved_database_url
        await migrate_async(url)
        store = LocalStore(settings.local_storage_path)
        _insert_expired(url, store.root, count)
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        uploads = UploadService(settings, sessions, store)
        candidates = {
            "db": uploads,
            "settings": settings,
            "sessions": sessions,
            "session_factory": sessions,
            "sessionmaker": sessions,
            "engine": engine,
            "store": store,
            "clock": utcnow,
            "uploads": uploads,
            "upload_service": uploads,
        }
        service, reason = _build(cls, candidates)
        if reason:
            await engine.dispose()
            log(f"  skipped: {reason}")
            return {"skipped": reason, "uploads": count}
        started = time.perf_counter()
        outcome = service.cleanup_expired_uploads()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        elapsed = time.perf_counter() - started
        remaining_files = sum(1 for _ in store.root.iterdir())
        await engine.dispose()
        remaining_rows = _pending_rows(url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "uploads": count,
        "seconds": elapsed,
        "per_upload_ms": elapsed / count * 1000,
        "returned": outcome if isinstance(outcome, int | float | str) else repr(outcome)[:200],
        "files_left": remaining_files,
        "rows_left_unexpired": remaining_rows,
    }
    each = result["per_upload_ms"]
    log(f"  {count} expired uploads cleaned in {elapsed:.2f} s ({each:.2f} ms each)")
    return result
