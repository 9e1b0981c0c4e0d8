"""The S3 store's in-memory copy of the pieces this process staged (`s3_staging`: in the
database or in the bucket), so that folding them into a part (or into the last part, at finish)
reads nothing back.

What it saves: with PATCHes smaller than a part, every staged remainder would be read back once
to build the part it belongs to (from the bucket: about 0.8 bytes read per byte uploaded with
1 MiB PATCHes, and one GetObject per piece). The pieces are still staged before the PATCH is
answered, exactly as without it: the cache only replaces the read-back, never the write.

Why it is safe: a cached piece is served only for the segment of the committed state that
names it, and only if the segment carries the tag of *this process's* put of that piece (in
the bucket, the ETag S3 answered to its PutObject) and the same size. The committed state is the
truth about which piece each segment is; if another node staged that offset again (a lease
handed over while this node's write was still running, or a resent chunk of another length),
the state it committed names that node's tag, which differs from ours, and the store reads the
piece back. States without tags (written before they were recorded) never match, so they are
always read back. Anything missing from the cache (evicted, another worker's or another node's
upload, a restarted process) is read back too: the cache can only save a read, never change a
byte.

Bounds: an upload's entries are its staged pieces, which are fewer bytes than one part; they
are dropped when folded into a part, when the upload finishes or is terminated, when an
abandoned write is discarded, and when a write starts from a committed state that no longer
names them. All uploads together hold at most `capacity` bytes; beyond it the least recently
used uploads lose their oldest pieces first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from video_upload.storage.s3_parts import Segment

DEFAULT_CAPACITY = 64 * 1024 * 1024  # S3_STAGED_CACHE_MB sets it for the store


@dataclass(frozen=True)
class _Piece:
    tag: str
    data: bytes


class StagedCache:
    """Staged pieces by upload (object key) and start offset, each with the tag of its put.

    `hits` and `misses` count the pieces served and the pieces `get` could not serve."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._uploads: OrderedDict[str, dict[int, _Piece]] = OrderedDict()

    def put(self, object_key: str, offset: int, tag: str | None, data: bytes) -> None:
        """Remember the bytes this process staged at `offset`."""
        self.drop(object_key, [offset])
        if not tag or len(data) > self.capacity:
            return
        pieces = self._uploads.setdefault(object_key, {})
        self._uploads.move_to_end(object_key)
        pieces[offset] = _Piece(tag, data)
        self.size += len(data)
        self._evict()

    def get(self, object_key: str, segment: Segment) -> bytes | None:
        """The bytes of `segment` if this process put exactly that object, else None."""
        piece = self._uploads.get(object_key, {}).get(segment.offset)
        if (
            piece is None
            or segment.tag is None
            or piece.tag != segment.tag
            or len(piece.data) != segment.size
        ):
            self.misses += 1
            return None
        self._uploads.move_to_end(object_key)
        self.hits += 1
        return piece.data

    def retain(self, object_key: str, segments: Iterable[Segment]) -> None:
        """Keep only the pieces that the committed `segments` name (same offset and tag)."""
        pieces = self._uploads.get(object_key)
        if not pieces:
            return
        named = {(segment.offset, segment.tag) for segment in segments}
        self.drop(object_key, [o for o, p in pieces.items() if (o, p.tag) not in named])

    def drop(self, object_key: str, offsets: Iterable[int]) -> None:
        pieces = self._uploads.get(object_key)
        if pieces is None:
            return
        for offset in offsets:
            piece = pieces.pop(offset, None)
            if piece is not None:
                self.size -= len(piece.data)
        if not pieces:
            del self._uploads[object_key]

    def drop_upload(self, object_key: str) -> None:
        pieces = self._uploads.pop(object_key, None)
        if pieces:
            self.size -= sum(len(piece.data) for piece in pieces.values())

    def _evict(self) -> None:
        while self.size > self.capacity:
            object_key, pieces = next(iter(self._uploads.items()))
            self.drop(object_key, [next(iter(pieces))])
