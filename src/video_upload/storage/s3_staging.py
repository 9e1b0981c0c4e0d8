"""Where the S3 store keeps a chunk's remainder that does not fill a part yet.

S3 takes parts of at least 5 MiB (all but the last), so a PATCH smaller than a part leaves
bytes that must be kept before the PATCH is answered, somewhere every node can read (the next
PATCH may reach another node), until enough bytes arrive to make a part. Two places qualify:

- **the metadata database** (`S3_STAGING=database`, the default): each remainder is one row of
  `staged_pieces` (`persistence.staging`), written before the offset is committed, in the same
  database and so in the same commit order: a piece is exactly as durable as the offset that
  counts it, on one node or many. Each byte crosses to S3 once, inside its part.
- **the bucket** (`S3_STAGING=bucket`): each remainder is a staging object
  `<object key>.staging/<offset:020d>`. Each such byte crosses to S3 twice (the staging object,
  then its part), and finishing lists the staging prefix to delete what abandoned writes left.

An upload records its place in its state when it is created, so changing the setting moves
only new uploads, and an upload staged in the bucket (every upload created before the database
place existed) finishes where it started.

A place keeps pieces by the upload's object key and the piece's start offset; putting a piece
where one already starts replaces it (a write at an offset is idempotent, see `storage.base`).
A piece's tag names one put of it (the PutObject's ETag, or a random tag in the database): the
store's in-memory copy (`s3_staged_cache`) serves a piece only if the committed state names the
tag of this process's own put. `StagedPieces` is what the store (`storage.s3`) calls: it stages,
reads back and deletes an upload's pieces in the place its state names, through that copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from video_upload.storage.base import BytesMissing, StagingArea, StorageError
from video_upload.storage.s3_parts import Segment, UploadState, staging_key, staging_prefix
from video_upload.storage.s3_requests import S3Requests, S3StorageError
from video_upload.storage.s3_staged_cache import StagedCache

FETCH_CONCURRENCY = 8  # pieces read back at once


class BucketStaging:
    """Staged pieces as staging objects in the store's bucket (a `StagingArea`)."""

    def __init__(self, requests: S3Requests) -> None:
        self.requests = requests

    async def put(self, object_key: str, offset: int, data: bytes | bytearray) -> str | None:
        return await self.requests._put_object(staging_key(object_key, offset), data)

    async def get(self, object_key: str, offset: int, size: int) -> bytes | None:
        try:
            return await self.requests._get(staging_key(object_key, offset), 0, size)
        except S3StorageError as error:
            if error.missing:
                return None
            raise

    async def delete(self, object_key: str, offsets: Sequence[int]) -> None:
        await self.requests._delete_objects([staging_key(object_key, o) for o in offsets])

    async def delete_all(self, object_key: str) -> None:
        prefix = staging_prefix(object_key)
        keys = [str(item["Key"]) async for item in self.requests._list_objects(prefix)]
        await self.requests._delete_objects(keys)


class StagedPieces:
    """The S3 store's staged pieces: the places they can be (the bucket always, the database
    when given), where new uploads stage (`place`), and the process's copy of what it staged
    (`cache`). Every call names the upload's state, which says where its pieces are."""

    def __init__(
        self,
        bucket: BucketStaging,
        database: StagingArea | None,
        place: str,
        cache: StagedCache,
        fetch_concurrency: int = FETCH_CONCURRENCY,
    ) -> None:
        self.areas: dict[str, StagingArea] = {"bucket": bucket}
        if database is not None:
            self.areas["database"] = database
        if place not in self.areas:
            raise StorageError(
                f"S3_STAGING={place} needs the metadata database's staging area", retryable=False
            )
        self.place = place
        self.cache = cache
        self.fetch_concurrency = fetch_concurrency

    def area(self, state: UploadState) -> StagingArea:
        """Where the upload's pieces are staged (its state says)."""
        area = self.areas.get(state.staging)
        if area is None:
            raise StorageError(
                f"the upload's pieces are staged in the {state.staging}, which this store was"
                " not given",
                retryable=False,
            )
        return area

    async def stage(self, state: UploadState, offset: int, data: bytearray) -> None:
        """Stage `data` at `offset`, keep a copy, and record the segment in `state`."""
        tag = await self.area(state).put(state.object_key, offset, data)
        state.staged.append(Segment(offset, len(data), tag))
        self.cache.put(state.object_key, offset, tag, bytes(data))

    async def fetch(self, state: UploadState) -> bytes:
        """Every staged segment, joined in order: from the cache when this process staged
        exactly that piece, else read back (each once, a few at a time)."""
        object_key, segments = state.object_key, state.staged
        cached = {s.offset: self.cache.get(object_key, s) for s in segments}
        pieces = {offset: data for offset, data in cached.items() if data is not None}
        missing = [s for s in segments if s.offset not in pieces]
        area = self.area(state)
        for first in range(0, len(missing), self.fetch_concurrency):
            batch = missing[first : first + self.fetch_concurrency]
            fetched = await asyncio.gather(*(area.get(object_key, s.offset, s.size) for s in batch))
            for segment, data in zip(batch, fetched, strict=True):
                if data is None:
                    raise BytesMissing(f"{object_key}'s piece at {segment.offset} is missing")
                pieces[segment.offset] = data
        return b"".join(pieces[s.offset] for s in segments)

    async def fold(self, state: UploadState) -> bytes:
        """The staged segments' bytes, for the part they go into. They become `consumed`: the
        next write deletes them, once the state without them has been committed."""
        data = await self.fetch(state)
        consumed = [segment.offset for segment in state.staged]
        self.cache.drop(state.object_key, consumed)
        state.consumed += consumed
        state.staged = []
        return data

    async def delete(self, state: UploadState, offsets: Sequence[int]) -> None:
        """Delete the upload's pieces at `offsets` (folded into a part, or abandoned)."""
        self.cache.drop(state.object_key, offsets)
        await self.area(state).delete(state.object_key, offsets)

    async def delete_all(self, state: UploadState) -> None:
        """Delete every piece of a finished upload (abandoned writes' too)."""
        self.cache.drop_upload(state.object_key)
        await self.area(state).delete_all(state.object_key)

    async def forget(self, object_key: str) -> None:
        """Delete every piece of an upload being removed, whatever its state says, except the
        bucket's staging objects (removing the upload's objects deletes those)."""
        self.cache.drop_upload(object_key)
        database = self.areas.get("database")
        if database is not None:
            await database.delete_all(object_key)
