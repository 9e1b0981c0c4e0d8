"""The storage seam: what the upload service needs from a place that keeps bytes.

A store owns bytes and nothing else; offsets, lengths, limits, checksums and ownership belong to
the service above it, and HTTP to the protocol layer above that. The metadata database is the
single source of truth: a store hands back a small JSON-serialisable `state` after every write,
the service commits it together with the new offset, and the next call gets that committed state
back. A write that was never committed (a crash, a checksum mismatch, a lost race) is therefore
simply forgotten: stores must make writes at an offset idempotent, so that the next write from the
committed offset overwrites whatever an abandoned one left behind.

Optional capabilities (concatenation, orphan listing, sidecars, signed playback URLs) are
separate protocols, so the protocol layer can advertise exactly what the configured store
supports.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

ByteStream = AsyncIterator[bytes]
StoreState = dict[str, Any]

# Sidecars are small objects kept beside an upload (its thumbnail): a few named files, each
# read and written whole, never streamed.
SIDECAR_SUFFIX = ".sidecar"
MAX_SIDECAR_BYTES = 4 * 1024 * 1024
_SIDECAR_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*(\.[a-z0-9]+)?")


class StorageError(Exception):
    """A store could not do its job; `retryable` says whether the same request may succeed later.

    Stores translate every foreign error (botocore, OSError) into this at their boundary.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class BytesMissing(StorageError):
    """The bytes asked for are not in the store: the file or object is gone, or shorter than the
    committed offset says. Retrying cannot bring them back."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class StorageFull(StorageError):
    """The store has no room for the rest of an upload now; space may be freed later."""


@dataclass(frozen=True)
class StoredUpload:
    """What the metadata database knows about an upload's bytes: the committed view, and the
    upload's length when it is known (a store may reserve room for the rest)."""

    key: str
    offset: int
    state: StoreState = field(default_factory=dict)
    length: int | None = None


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one `write`: how far the bytes now reach, and the state to commit with it."""

    offset: int
    state: StoreState


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range of a finished upload, as HTTP Range requests express it."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class UploadStore(Protocol):
    """The core capability every store has."""

    async def create(self, key: str) -> StoreState:
        """Prepare an empty upload under `key` (a server-made id, never user input)."""
        ...

    async def write(self, upload: StoredUpload, stream: ByteStream) -> WriteResult:
        """Append every byte of `stream` at `upload.offset`.

        Returns only once the store holds the bytes (or has staged them) so that committing the
        result cannot claim bytes the store does not hold; a store may leave flushing them to
        disk until `finish`, as long as `held` then tells what a machine crash took away. Memory
        stays bounded by one part buffer whatever the stream's length. The stream ends normally
        when the client goes away; what arrived until then is kept like any other bytes.
        """
        ...

    async def held(self, upload: StoredUpload) -> int:
        """How many of an unfinished upload's committed bytes the store still holds.

        `upload.offset`, unless a crash of the machine took away bytes that were written but not
        yet flushed to disk; the service then moves the upload back to this offset, and the
        client, which asks for the offset before it resumes, sends those bytes again.
        """
        ...

    async def discard(self, committed: StoredUpload, abandoned: WriteResult) -> None:
        """Clean up after a write whose result will not be committed (best effort)."""
        ...

    async def finish(self, upload: StoredUpload) -> StoreState:
        """Seal an upload whose every byte has arrived (`upload.offset` is its length); once
        this returns, the bytes survive a crash of the machine."""
        ...

    async def terminate(self, upload: StoredUpload) -> None:
        """Delete everything the upload holds, finished or not. Idempotent."""
        ...

    def read(self, upload: StoredUpload, byte_range: ByteRange) -> ByteStream:
        """Stream a range of a finished upload."""
        ...

    async def check(self) -> None:
        """Raise StorageError unless the store is reachable (readiness probe)."""
        ...

    async def close(self) -> None:
        """Release long-lived clients."""
        ...


@runtime_checkable
class ConcatenatingStore(Protocol):
    """A store that can build one finished upload out of several finished partial uploads."""

    async def concatenate(self, key: str, parts: Sequence[StoredUpload]) -> StoreState:
        """Create the finished upload `key` holding the bytes of `parts`, in order."""
        ...


@runtime_checkable
class OrphanListingStore(Protocol):
    """A store that can find storage no metadata row knows (after crashes), for cleanup."""

    async def list_keys(self, older_than: datetime) -> list[str]:
        """Keys of uploads (finished or not) last written before `older_than`."""
        ...

    async def remove_key(self, key: str) -> None:
        """Delete everything stored under `key`."""
        ...


@runtime_checkable
class SidecarStore(Protocol):
    """A store that keeps small named objects beside an upload (say, its thumbnail).

    Layout: `<upload key>.sidecar/<name>` (a directory, or an S3 prefix), so sidecars never look
    like uploads of their own: `list_keys` counts them under their upload's key (sidecars whose
    upload is gone are orphans too). `terminate` and `remove_key` delete them with the upload.
    """

    async def put_sidecar(self, key: str, name: str, data: bytes) -> None:
        """Store (or replace) the sidecar `name` of upload `key`, at most MAX_SIDECAR_BYTES."""
        ...

    async def read_sidecar(self, key: str, name: str) -> bytes | None:
        """The sidecar's bytes, or None when the upload has no such sidecar."""
        ...


@runtime_checkable
class PlaybackSigningStore(Protocol):
    """A store that can hand a browser a short-lived URL to read a finished upload from itself
    (S3: a presigned GetObject), so that playback does not pass through the service. Stores
    without it are played through the service's own signed content URL."""

    async def playback_url(
        self, upload: StoredUpload, content_type: str, expires_seconds: int
    ) -> str:
        """An absolute URL that answers GET (with Range) with the finished upload's bytes and
        `content_type`, for `expires_seconds`, to whoever holds it."""
        ...


class StagingArea(Protocol):
    """A place where a store keeps small pieces of unfinished uploads, by the upload's object
    key and the piece's start offset, that every node reads: the S3 store's remainders smaller
    than a part (`storage.s3_staging`). The metadata database is one (`persistence.staging`)."""

    async def put(self, object_key: str, offset: int, data: bytes | bytearray) -> str | None:
        """Keep `data` as the piece starting at `offset`, replacing one there; its tag (None
        when the place gave none)."""
        ...

    async def get(self, object_key: str, offset: int, size: int) -> bytes | None:
        """The `size` bytes of the piece at `offset`; None when there is no such piece."""
        ...

    async def delete(self, object_key: str, offsets: Sequence[int]) -> None:
        """Delete the pieces at `offsets` (those that are there)."""
        ...

    async def delete_all(self, object_key: str) -> None:
        """Delete every piece of the upload."""
        ...


def check_sidecar(name: str, data: bytes | None = None) -> None:
    """Refuse sidecar names that could escape their folder, and oversized sidecars."""
    if len(name) > 64 or not _SIDECAR_NAME.fullmatch(name):
        raise StorageError(f"invalid sidecar name {name!r}", retryable=False)
    if data is not None and len(data) > MAX_SIDECAR_BYTES:
        raise StorageError(
            f"sidecar {name} is larger than {MAX_SIDECAR_BYTES} bytes", retryable=False
        )
