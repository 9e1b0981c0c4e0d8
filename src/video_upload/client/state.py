"""Where interrupted uploads are remembered: one JSON file in the user's data directory.

A record is keyed by a fingerprint of (absolute path, size, mtime, session id, server URL), so the
same command run again finds its upload and resumes it instead of creating a second video.
Records of finished uploads are kept too: uploading the same unchanged file to the same session
again answers with the video it already made. A record whose file is gone or has changed can never
match again (the fingerprint holds the size and mtime), so every save drops those: the file grows
with the videos a user still has, not with every upload ever made.

The file is rewritten atomically (temporary file, fsync, rename) under an advisory lock, so two
uploaders running at once do not lose each other's records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

APP_NAME = "video-upload"
STATE_FILE_NAME = "uploads.json"


def user_data_dir() -> Path:
    """The per-user data directory, as platformdirs would choose it (without depending on it)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    base = os.environ.get("XDG_DATA_HOME", "").strip()
    if not base or not Path(base).is_absolute():
        base = str(Path.home() / ".local" / "share")
    return Path(base) / APP_NAME


def default_state_path() -> Path:
    return user_data_dir() / STATE_FILE_NAME


def fingerprint(path: Path, size: int, mtime_ns: int, session_id: str, server: str) -> str:
    """A stable key for "this file, unchanged, to this session on this server"."""
    parts = [str(path.resolve()), size, mtime_ns, session_id.strip().lower(), server.rstrip("/")]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


@dataclass(frozen=True)
class UploadRecord:
    upload_id: str
    upload_url: str
    video_id: str
    session_id: str
    server: str
    path: str
    size: int
    mtime_ns: int
    chunk_size: int
    completed: bool = False

    @classmethod
    def from_json(cls, value: Any) -> UploadRecord | None:
        """The record in `value`, or None when it is not one (a damaged or foreign entry)."""
        if not isinstance(value, dict):
            return None
        names = {field.name for field in fields(cls)}
        try:
            return cls(**{key: item for key, item in value.items() if key in names})
        except TypeError:
            return None


class UploadRecords:
    """The records file. Every operation reads it afresh: other uploaders may have written."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_state_path()

    def get(self, key: str) -> UploadRecord | None:
        with self._locked():
            return UploadRecord.from_json(self._read().get(key))

    def put(self, key: str, record: UploadRecord) -> None:
        with self._locked():
            records = {
                other: value for other, value in self._read().items() if _still_matchable(value)
            }
            records[key] = asdict(record)
            self._write(records)

    def remove(self, key: str) -> None:
        with self._locked():
            records = self._read()
            if records.pop(key, None) is not None:
                self._write(records)

    # -- plumbing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+b") as lock:
            try:
                import fcntl
            except ImportError:  # not POSIX: atomic replacement alone has to do
                yield
                return
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged file costs resumability, never the upload itself
        return data if isinstance(data, dict) else {}

    def _write(self, records: dict[str, Any]) -> None:
        fd, temporary = tempfile.mkstemp(prefix=".uploads-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(records, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def _still_matchable(value: Any) -> bool:
    """Whether a stored record's file is still there, unchanged: only then can it be found again."""
    record = UploadRecord.from_json(value)
    if record is None:
        return False
    try:
        status = os.stat(record.path)
    except OSError:
        return False
    return status.st_size == record.size and status.st_mtime_ns == record.mtime_ns
