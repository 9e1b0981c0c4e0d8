"""Direct uploads, the storage side: a store whose clients send parts straight to it.

A direct upload is an S3 multipart upload whose parts the client PUTs itself, to presigned
UploadPart URLs; the service never sees its bytes, only creates, signs, lists, completes and
aborts it (the rules are in `video_upload.lifecycle.direct`, the S3 calls in `s3_presign`).

Its committed state, kept in the row's `upload_metadata` like any store's, is

    {"direct": true, "object_key": ..., "multipart_upload_id": ..., "part_size": N}

and, once completed, the S3 store's finished state with `"direct": true` kept. The mark tells
the store to refuse tus writes to it: the parts S3 holds are the client's, not the store's.
Nothing here talks to S3 or imports botocore, so the service can ask whether its store has
the capability without loading the S3 client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from video_upload.storage.base import StoredUpload, StoreState

DIRECT_MARK = "direct"


def is_direct(state: StoreState) -> bool:
    """Whether an upload's committed state is a direct upload's."""
    return state.get(DIRECT_MARK) is True


def finished_state(object_key: str, size: int) -> StoreState:
    """A completed direct upload's state: the S3 store's finished state, still marked."""
    return {"object_key": object_key, "finished": True, "size": size, DIRECT_MARK: True}


@dataclass(frozen=True)
class ListedPart:
    """One part S3 holds of a multipart upload (ListParts)."""

    number: int
    etag: str
    size: int
    last_modified: datetime | None = None


@runtime_checkable
class DirectUploadStore(Protocol):
    """A store that lets clients upload parts straight to it (S3 presigned UploadPart URLs)."""

    part_size: int

    async def create_direct(self, key: str, part_size: int) -> StoreState:
        """Start the multipart upload of `key` (a server-made id); its direct state."""
        ...

    def object_key(self, upload: StoredUpload) -> str:
        """The S3 key of the upload's object, as clients name it (`key`)."""
        ...

    async def sign_part(
        self, upload: StoredUpload, number: int, size: int, expires_seconds: int
    ) -> str:
        """A URL that accepts exactly one PUT of part `number`, of exactly `size` bytes (the
        length is signed), for `expires_seconds`."""
        ...

    async def list_parts(self, upload: StoredUpload) -> list[ListedPart] | None:
        """Every part S3 holds, in the order listed; None when the multipart upload is gone
        (completed or aborted)."""
        ...

    async def complete_direct(
        self, upload: StoredUpload, parts: Sequence[ListedPart], size: int
    ) -> StoreState:
        """Join `parts` (numbers 1..n, in order) into the object; its finished state."""
        ...

    async def completed_size(self, upload: StoredUpload) -> int | None:
        """The size of the upload's finished object, or None when there is none."""
        ...
