"""One resumable upload: REST init, tus PATCHes from the server's offset, REST complete.

The loop trusts the server, never itself: after any failure it asks for the offset (HEAD) and
goes on from there. Each PATCH carries `Upload-Checksum: sha256 …` over exactly the bytes it
sends, read from the file one piece at a time (a chunk is never held in memory whole).

Duplicates are what a resumable uploader must not make. The upload is recorded (see `state`)
the moment `upload/init` answers, before any byte is sent; a rerun of the same command finds the
record and resumes. An init whose answer was lost on the way (the connection broke after the
request went out) is not retried blindly, since the server may have created the upload already.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar

from video_upload.client.api import Api, ClientError, Conflict, Gone, Transient
from video_upload.client.media import guess_type, read_duration
from video_upload.client.state import UploadRecord, UploadRecords, fingerprint

T = TypeVar("T")

DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024
READ_SIZE = 64 * 1024  # the piece read from disk, hashed and handed to the socket at a time


class UploadFailed(Exception):
    """The upload stopped; the message says why and whether running it again helps."""


@dataclass(frozen=True)
class LocalFile:
    path: Path
    size: int
    mtime_ns: int
    content_type: str | None

    @classmethod
    def of(cls, path: Path, content_type: str | None = None) -> LocalFile:
        absolute = path.expanduser().resolve()
        info = absolute.stat()
        return cls(absolute, info.st_size, info.st_mtime_ns, content_type or guess_type(path.name))

    @property
    def filename(self) -> str:
        return self.path.name

    def unchanged(self) -> bool:
        info = os.stat(self.path)
        return info.st_size == self.size and info.st_mtime_ns == self.mtime_ns


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: base, base*factor, … capped, with full jitter; `attempts` in a row."""

    attempts: int = 8
    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * self.factor ** max(0, failures - 1))
        chosen = random.uniform(ceiling / 2, ceiling)
        return max(chosen, min(retry_after, self.cap)) if retry_after is not None else chosen


class Reporter(Protocol):
    """What the person running the command sees; the command line draws a progress bar."""

    def started(self, total: int, offset: int, resumed: bool) -> None: ...

    def advanced(self, offset: int) -> None: ...

    def note(self, message: str) -> None: ...


class SilentReporter:
    def started(self, total: int, offset: int, resumed: bool) -> None:
        pass

    def advanced(self, offset: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class Outcome:
    video_id: str
    upload_id: str
    resumed_from: int | None  # the offset a previous run had reached, when this one resumed
    already_done: bool = False


class Uploader:
    def __init__(
        self,
        api: Api,
        records: UploadRecords,
        *,
        server: str,
        chunk_size: int | None = None,
        retry: RetryPolicy | None = None,
        reporter: Reporter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.records = records
        self.server = server.rstrip("/")
        self.chunk_size = chunk_size
        self.retry = retry or RetryPolicy()
        self.reporter: Reporter = reporter or SilentReporter()
        self.sleep = sleep

    def upload(
        self, file: LocalFile, session_id: str, duration_seconds: float | None = None
    ) -> Outcome:
        """Upload `file`, or resume its upload. `duration_seconds` None: read from the file
        (`media.read_duration`, which raises `DurationUnknown`), when an upload has to be made."""
        key = fingerprint(file.path, file.size, file.mtime_ns, session_id, self.server)
        record = self.records.get(key)
        if record is not None and record.completed:
            return Outcome(record.video_id, record.upload_id, None, already_done=True)
        resumed_from: int | None = None
        offset = 0
        if record is not None:
            stored_url = record.upload_url
            try:
                offset = self._retrying(lambda: self.api.head(stored_url).offset)
                resumed_from = offset
            except Gone:
                self.reporter.note("the interrupted upload is gone from the server; starting over")
                self.records.remove(key)
                record = None
        restarts = 0
        while True:
            if record is None:
                record = self._init(key, file, session_id, duration_seconds)
                offset = 0
            self.reporter.started(file.size, offset, resumed_from is not None)
            try:
                video = self._finish(record, file, offset)
            except Gone:
                # Expired or removed while we were sending: one fresh start, then give up.
                restarts += 1
                if restarts > 1:
                    raise UploadFailed("the server keeps losing this upload") from None
                self.reporter.note("the upload vanished from the server; starting over")
                self.records.remove(key)
                record, resumed_from = None, None
                continue
            done = replace(record, completed=True, video_id=str(video.get("id", record.video_id)))
            self.records.put(key, done)
            return Outcome(done.video_id, done.upload_id, resumed_from)

    # -- steps ---------------------------------------------------------------------------

    def _init(
        self, key: str, file: LocalFile, session_id: str, duration_seconds: float | None
    ) -> UploadRecord:
        declared = read_duration(file.path) if duration_seconds is None else duration_seconds

        def init() -> UploadRecord:
            result = self.api.init_upload(
                session_id, file.filename, file.size, declared, file.content_type
            )
            record = UploadRecord(
                upload_id=result.upload_id,
                upload_url=result.upload_url,
                video_id=result.video_id,
                session_id=session_id,
                server=self.server,
                path=str(file.path),
                size=file.size,
                mtime_ns=file.mtime_ns,
                chunk_size=self.chunk_size or result.chunk_size or DEFAULT_CHUNK_SIZE,
            )
            self.records.put(key, record)  # before the first byte: a rerun must find it
            return record

        try:
            return self._retrying(init, idempotent=False)
        except Transient as error:
            if error.maybe_applied:
                raise UploadFailed(
                    f"the server's answer to upload/init was lost ({error.message}); it may have "
                    "created the upload anyway, so this is not retried automatically. Check "
                    "`video-upload videos --session …` before running the command again."
                ) from error
            raise

    def _finish(self, record: UploadRecord, file: LocalFile, offset: int) -> dict[str, object]:
        """Send every missing byte, then complete; returns the finished video."""
        while True:
            self._send_from(record, file, offset)
            try:
                return self._retrying(lambda: self.api.complete(record.upload_id))
            except Conflict:
                # The server says bytes are missing (it lost an unsealed write): ask and go on.
                offset = self._retrying(lambda: self.api.head(record.upload_url).offset)

    def _send_from(self, record: UploadRecord, file: LocalFile, offset: int) -> None:
        chunk_size = max(1, self.chunk_size or record.chunk_size)  # --chunk-size wins on a rerun
        failures = 0
        self.reporter.advanced(offset)
        while offset < file.size:
            if not file.unchanged():
                raise UploadFailed(
                    f"{file.path} changed during the upload; the uploaded part no longer matches"
                )
            length = min(chunk_size, file.size - offset)
            checksum = sha256_checksum(file.path, offset, length)
            try:
                offset = self.api.patch(
                    record.upload_url,
                    offset,
                    self._pieces(file.path, offset, length),
                    length,
                    checksum,
                )
                failures = 0
            except (Transient, Conflict) as error:
                failures += 1
                if failures > self.retry.attempts:
                    raise UploadFailed(
                        f"giving up after {failures} failed attempts ({error.message}); "
                        "run the same command again to resume"
                    ) from error
                retry_after = error.retry_after if isinstance(error, Transient) else None
                if not isinstance(error, Conflict):
                    self._pause(failures, error, retry_after)
                offset = self._retrying(lambda: self.api.head(record.upload_url).offset)
            self.reporter.advanced(offset)

    def _pieces(self, path: Path, offset: int, length: int) -> Iterator[bytes]:
        """The chunk's bytes straight from the file, reporting progress as they go out."""
        sent = 0
        for piece in read_range(path, offset, length):
            yield piece
            sent += len(piece)
            self.reporter.advanced(offset + sent)

    # -- retries -------------------------------------------------------------------------

    def _retrying(self, call: Callable[[], T], *, idempotent: bool = True) -> T:
        failures = 0
        while True:
            try:
                return call()
            except Transient as error:
                failures += 1
                if failures > self.retry.attempts or (error.maybe_applied and not idempotent):
                    raise
                self._pause(failures, error, error.retry_after)

    def _pause(self, failures: int, error: ClientError, retry_after: float | None) -> None:
        delay = self.retry.delay(failures, retry_after)
        self.reporter.note(f"{error.message}; retrying in {delay:.1f}s")
        self.sleep(delay)


def read_range(path: Path, offset: int, length: int) -> Iterator[bytes]:
    """`length` bytes of the file from `offset`, READ_SIZE at a time."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        remaining = length
        while remaining > 0:
            piece = handle.read(min(READ_SIZE, remaining))
            if not piece:
                raise UploadFailed(f"{path} is shorter than it was when the upload began")
            remaining -= len(piece)
            yield piece


def sha256_checksum(path: Path, offset: int, length: int) -> str:
    """The `Upload-Checksum` value for a range of the file: `sha256 <base64 digest>`."""
    digest = hashlib.sha256()
    for piece in read_range(path, offset, length):
        digest.update(piece)
    return f"sha256 {b64encode(digest.digest()).decode('ascii')}"
