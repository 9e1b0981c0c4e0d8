"""The pure bookkeeping of the S3 store: its state dict, its object names, its concatenation plan.

Nothing here talks to S3; `video_upload.storage.s3` does the requests. Keeping the arithmetic
apart keeps the store readable and lets the rules be checked without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from video_upload.config import S3_MIN_PART_SIZE
from video_upload.storage.base import SIDECAR_SUFFIX, StorageError, StoreState

MAX_PARTS = 10_000
STAGING_MARK = ".staging"
STAGING_PLACES = ("bucket", "database")  # where staged pieces are kept (`s3_staging`)


def staging_prefix(object_key: str) -> str:
    """Where the staged remainders of `object_key` live."""
    return f"{object_key}{STAGING_MARK}/"


def staging_key(object_key: str, offset: int) -> str:
    """The staging object holding the bytes that start at `offset` (zero-padded, so they sort)."""
    return f"{staging_prefix(object_key)}{offset:020d}"


def key_of(prefix: str, object_key: str) -> str | None:
    """The upload key an object or multipart upload under `prefix` belongs to (None if foreign)."""
    if not object_key.startswith(prefix):
        return None
    rest = object_key[len(prefix) :]
    head, slash, _ = rest.partition("/")
    if slash:  # a staged segment or a sidecar belongs to the upload it sits beside
        if head.endswith(STAGING_MARK):
            head = head.removesuffix(STAGING_MARK)
        elif head.endswith(SIDECAR_SUFFIX):
            head = head.removesuffix(SIDECAR_SUFFIX)
        else:
            return None
    return head or None


def belongs_to(object_key: str, candidate: str) -> bool:
    """Whether the S3 object `candidate` is the upload `object_key` or one of its staged parts."""
    return candidate == object_key or candidate.startswith(staging_prefix(object_key))


@dataclass(frozen=True)
class Part:
    """One uploaded part of the multipart upload."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class Segment:
    """One staged remainder: the bytes from `offset` on, and the tag of the put that staged it
    (`s3_staging`: in the bucket, the PutObject's ETag; None in states written before tags were
    recorded). Stored as "etag", the name it had when only the bucket staged."""

    offset: int
    size: int
    tag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.tag is None:
            return {"offset": self.offset, "size": self.size}
        return {"offset": self.offset, "size": self.size, "etag": self.tag}

    @classmethod
    def from_dict(cls, segment: Any) -> Segment:
        if not isinstance(segment, dict):
            raise TypeError("a staged segment is not a mapping")
        return cls(int(segment["offset"]), int(segment["size"]), _optional_str(segment.get("etag")))


@dataclass
class UploadState:
    """The committed view of an upload in S3, as kept in the metadata database.

    Invariant while unfinished: the parts hold bytes [0, parts_size), the staged segments hold
    the contiguous bytes [parts_size, offset) in order, and every part is exactly `part_size`
    bytes, so a part boundary always falls on a multiple of the part size. `consumed` lists
    staging objects already folded into a part: they are deleted by the next call, once the
    state that no longer needs them has been committed. `staging` names where the upload's
    pieces are kept (`s3_staging`); states written before it was recorded staged in the bucket.
    """

    object_key: str
    multipart_upload_id: str | None = None
    parts: list[Part] = field(default_factory=list)
    staged: list[Segment] = field(default_factory=list)
    consumed: list[int] = field(default_factory=list)
    finished: bool = False
    size: int = 0
    staging: str = STAGING_PLACES[0]

    @property
    def parts_size(self) -> int:
        return sum(part.size for part in self.parts)

    @property
    def staged_size(self) -> int:
        return sum(segment.size for segment in self.staged)

    @property
    def next_part_number(self) -> int:
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise StorageError("upload needs more than 10,000 parts", retryable=False)
        return number

    def to_dict(self) -> StoreState:
        if self.finished:
            return {"object_key": self.object_key, "finished": True, "size": self.size}
        return {
            "object_key": self.object_key,
            "multipart_upload_id": self.multipart_upload_id,
            "parts": [{"number": p.number, "etag": p.etag, "size": p.size} for p in self.parts],
            "staged": [segment.to_dict() for segment in self.staged],
            "consumed": list(self.consumed),
            "staging": self.staging,
        }

    @classmethod
    def from_dict(cls, state: StoreState, default_key: str) -> UploadState:
        try:
            return cls(
                object_key=str(state.get("object_key") or default_key),
                multipart_upload_id=_optional_str(state.get("multipart_upload_id")),
                parts=[
                    Part(int(p["number"]), str(p["etag"]), int(p["size"]))
                    for p in _list(state, "parts")
                ],
                staged=[Segment.from_dict(s) for s in _list(state, "staged")],
                consumed=[int(offset) for offset in _list(state, "consumed")],
                finished=bool(state.get("finished", False)),
                size=int(state.get("size", 0)),
                staging=_staging_place(state.get("staging", STAGING_PLACES[0])),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StorageError(f"malformed S3 upload state: {error}", retryable=False) from error

    def check_unfinished(self, offset: int) -> None:
        """Refuse a state that cannot describe an unfinished upload at `offset`."""
        if self.finished:
            raise StorageError("upload is already finished", retryable=False)
        if self.multipart_upload_id is None:
            raise StorageError("upload has no multipart upload", retryable=False)
        if self.parts_size + self.staged_size != offset:
            raise StorageError(
                "S3 upload state does not match the committed offset", retryable=False
            )


def _staging_place(value: Any) -> str:
    if value not in STAGING_PLACES:
        raise ValueError(f"unknown staging place {value!r}")
    return str(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _list(state: StoreState, name: str) -> list[Any]:
    value = state.get(name) or []
    if not isinstance(value, list):
        raise TypeError(f"{name} is not a list")
    return value


# -- concatenation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Slice:
    """Bytes [start, end) of the S3 object `source`."""

    source: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class CopyPart:
    """A part copied server-side (UploadPartCopy) from one slice of one finished partial."""

    slice: Slice


@dataclass(frozen=True)
class BufferedPart:
    """A part assembled in memory from small slices (each downloaded once), then uploaded."""

    slices: tuple[Slice, ...]

    @property
    def size(self) -> int:
        return sum(piece.size for piece in self.slices)


PlannedPart = CopyPart | BufferedPart


def plan_concatenation(
    sources: Sequence[tuple[str, int]], min_part: int = S3_MIN_PART_SIZE
) -> list[PlannedPart]:
    """Cut the bytes of `sources` (object key, size), in order, into multipart-upload parts.

    Every part except the last is at least `min_part` bytes. A stretch that can stand as a part
    on its own is copied server-side; a small partial is buffered, and topped up to `min_part`
    with the head of the following partial (a ranged download of at most `min_part` bytes), so
    a buffered part never exceeds `min_part` and large partials never pass through the app.
    """
    pieces = [(source, size) for source, size in sources if size > 0]
    plan: list[PlannedPart] = []
    buffered: list[Slice] = []
    buffered_size = 0
    for index, (source, size) in enumerate(pieces):
        last = index == len(pieces) - 1
        position = 0
        while position < size:
            rest = size - position
            if not buffered and (rest >= min_part or last):
                plan.append(CopyPart(Slice(source, position, size)))
                position = size
                continue
            take = min(min_part - buffered_size, rest)
            buffered.append(Slice(source, position, position + take))
            buffered_size += take
            position += take
            if buffered_size >= min_part:
                plan.append(BufferedPart(tuple(buffered)))
                buffered, buffered_size = [], 0
    if buffered:
        plan.append(BufferedPart(tuple(buffered)))
    if len(plan) > MAX_PARTS:
        raise StorageError("concatenation needs more than 10,000 parts", retryable=False)
    return plan
