"""Guarding a request body on its way to storage: counting, limiting and hashing it.

The guard ends the stream (instead of raising) when the client disconnects or when the body
would run past the upload's length, and records which of the two happened, so the store always
sees a well-formed stream and the service decides afterwards what to commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from video_upload.checksums import ExpectedChecksum, Hasher


class ClientGone(Exception):
    """Raised by the protocol layer's body iterator when the client disconnects."""


class GuardedBody:
    def __init__(
        self,
        source: AsyncIterator[bytes],
        *,
        limit: int,
        checksum: ExpectedChecksum | None,
    ) -> None:
        self._source = source
        self._limit = limit
        self._hasher: Hasher | None = checksum.new_hasher() if checksum else None
        self._checksum = checksum
        self.received = 0
        self.disconnected = False
        self.overflowed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source:
                if not chunk:
                    continue
                room = self._limit - self.received
                if len(chunk) > room:
                    self.overflowed = True
                    chunk = chunk[:room]
                if chunk:
                    self.received += len(chunk)
                    if self._hasher is not None:
                        self._hasher.update(chunk)
                    yield chunk
                if self.overflowed:
                    return
        except ClientGone:
            self.disconnected = True

    @property
    def checksum_matches(self) -> bool:
        if self._checksum is None or self._hasher is None:
            return True
        return self._hasher.digest() == self._checksum.digest
