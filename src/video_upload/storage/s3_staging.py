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
tag of this process's own put.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from video_upload.storage.base import StagingArea
from video_upload.storage.s3_parts import staging_key, staging_prefix
from video_upload.storage.s3_requests import S3Requests, S3StorageError


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


async def get_all(
    area: StagingArea, object_key: str, pieces: Sequence[tuple[int, int]], concurrency: int
) -> dict[int, bytes | None]:
    """The pieces (offset, size) of one upload by offset, `concurrency` at a time."""
    found: dict[int, bytes | None] = {}
    for first in range(0, len(pieces), concurrency):
        batch = pieces[first : first + concurrency]
        fetched = await asyncio.gather(*(area.get(object_key, o, size) for o, size in batch))
        found.update((o, data) for (o, _), data in zip(batch, fetched, strict=True))
    return found
