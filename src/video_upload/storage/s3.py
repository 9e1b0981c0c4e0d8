"""The S3 store: uploads as S3 multipart uploads (AWS S3, MinIO, or any S3-compatible service).

Bucket layout (every name below the configured `s3_key_prefix`, `uploads/` by default):

    <prefix><key>                          the finished object; while the upload is unfinished,
                                           the pending multipart upload that will become it
    <prefix><key>.staging/<offset:020d>    with `S3_STAGING=bucket`: a staged remainder, the bytes
                                           of one chunk, starting at that offset, that did not
                                           fill a whole part

Part sizing: every part is exactly `s3_part_size` bytes (at least 5 MiB, the S3 minimum for
every part but the last), except the last part, which holds whatever is left when the upload
finishes. Part N therefore always holds bytes [(N-1) * part_size, N * part_size), whatever the
chunk pattern, and a 500 MiB file needs 100 parts, far below the limit of 10,000.

The staging rule: a write streams the chunk into a buffer of one part. Whenever the buffer
(plus the bytes already staged) reaches a whole part, it is uploaded with UploadPart and the
buffer starts over; a chunk aligned to the part size with nothing staged costs exactly one
UploadPart and nothing else. A remainder smaller than a part is staged (`s3_staging`: in the
metadata database by default, else as a staging object in the bucket; not on local disk,
because the next chunk may reach another node). When staged bytes plus new bytes reach a part,
the segments are folded into the part in order and the part is uploaded; each staged piece
comes from the process's copy of the pieces it staged (`s3_staged_cache`, only if the committed
segment names that put's tag), else it is read back (exactly once in its life). Memory per
upload stays at about one part buffer, plus that copy. `finish` turns the staged remainder into
the (possibly small) last part, completes the multipart upload and deletes the staged pieces. A
zero-byte upload aborts its multipart upload and puts an empty object instead.

The database is the source of truth: every call gets the committed state (multipart upload id,
parts with their ETags, staged segments) and returns a new one. A write that is never committed
is simply forgotten, because everything it did is overwritten by the next write from the
committed state: part numbers derive from the committed parts (an abandoned UploadPart N is
overwritten by the next UploadPart N, and parts beyond the committed ones are dropped by
CompleteMultipartUpload), and staged pieces are named by their start offset. For the same
reason, staged pieces folded into a part are not deleted by the write that folds them (the
committed state may still need them if that write is abandoned): the state lists them as
`consumed`, and the next write deletes them, once the state that no longer needs them has been
committed. Pieces left over by abandoned writes are deleted when the upload finishes or is
terminated.

Sidecars (a finished video's thumbnail) are small objects `<prefix><key>.sidecar/<name>`, beside
the video; `terminate` deletes them with it, and `list_keys` counts them under the video's key.

Concatenation builds the final object with a new multipart upload whose parts are copied
server-side (UploadPartCopy) from the finished partial uploads; only small partials (and the
head of the partial following one, to top a part up to 5 MiB) are downloaded.

The IAM permissions it needs, and which calls need each, are in docs/operations.md.

Every foreign error (botocore's ClientError, connection errors, timeouts) is translated into
`StorageError` at the request layer (`s3_requests`): retryable for 5xx, throttling and
connection problems, not retryable for other client errors. Nothing from botocore gets out.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError

from video_upload.config import MIB, Settings
from video_upload.storage.base import (
    MAX_SIDECAR_BYTES,
    SIDECAR_SUFFIX,
    ByteRange,
    BytesMissing,
    ByteStream,
    StagingArea,
    StorageError,
    StoredUpload,
    StoreState,
    WriteResult,
    check_sidecar,
)
from video_upload.storage.s3_parts import (
    BufferedPart,
    CopyPart,
    Part,
    Slice,
    UploadState,
    key_of,
    plan_concatenation,
)
from video_upload.storage.s3_presign import S3Presigning
from video_upload.storage.s3_requests import S3StorageError
from video_upload.storage.s3_staged_cache import StagedCache
from video_upload.storage.s3_staging import BucketStaging, StagedPieces

READ_CHUNK = 256 * 1024


class S3Store(S3Presigning):
    """Keeps uploads as S3 multipart uploads; implements UploadStore, ConcatenatingStore,
    OrphanListingStore and DirectUploadStore (`s3_presign`). Build it with
    `await S3Store.open(settings, database_staging)`; the request counters (`request_counts`,
    `bytes_sent`, `bytes_received`, `bytes_copied`) come from S3Requests.

    `database_staging` is the metadata database's place for staged pieces (`s3_staging`),
    required when `settings.s3_staging` is "database"; new uploads stage where that setting
    says, existing ones where their state says."""

    def __init__(
        self,
        client: Any,
        settings: Settings,
        stack: AsyncExitStack | None = None,
        signer: Any = None,
        database_staging: StagingArea | None = None,
    ):
        super().__init__(client, settings.s3_bucket_name)
        self.signer = client if signer is None else signer
        self._stack = stack
        self.prefix = settings.s3_key_prefix
        self.part_size = settings.s3_part_size
        self.staged_cache = StagedCache(settings.s3_staged_cache_mb * MIB)
        self.staged = StagedPieces(
            BucketStaging(self), database_staging, settings.s3_staging, self.staged_cache
        )

    @classmethod
    async def open(cls, settings: Settings, database_staging: StagingArea | None = None) -> S3Store:
        """Create the one long-lived client, and the bucket if it does not exist."""
        config = AioConfig(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            signature_version="s3v4",  # presigned URLs too (botocore presigns SigV2 otherwise)
        )
        stack = AsyncExitStack()

        def new_client(endpoint_url: str) -> Any:
            return get_session().create_client(
                "s3",
                region_name=settings.aws_region or None,
                endpoint_url=endpoint_url or None,
                aws_access_key_id=settings.aws_access_key_id or None,
                aws_secret_access_key=settings.aws_secret_access_key.get_secret_value() or None,
                config=config,
            )

        try:
            client = await stack.enter_async_context(new_client(settings.s3_endpoint_url))
            # Presigned URLs are signed for the host clients use (SigV4 signs it); this client
            # only signs, locally, and never sends a request.
            signer = None
            if settings.s3_public_endpoint_url:
                signer = await stack.enter_async_context(
                    new_client(settings.s3_public_endpoint_url)
                )
            store = cls(client, settings, stack, signer, database_staging)
            await store._ensure_bucket(settings.aws_region)
        except (BotoCoreError, ValueError) as error:
            await stack.aclose()
            raise StorageError(f"cannot set up the S3 client: {error}", retryable=False) from None
        except BaseException:
            await stack.aclose()
            raise
        return store

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def check(self) -> None:
        await self._request("HeadBucket", Bucket=self.bucket)

    # -- the upload lifecycle ----------------------------------------------------------------

    async def create(self, key: str) -> StoreState:
        object_key = self._object_key(key)
        response = await self._request("CreateMultipartUpload", Bucket=self.bucket, Key=object_key)
        state = UploadState(
            object_key, multipart_upload_id=str(response["UploadId"]), staging=self.staged.place
        )
        return state.to_dict()

    async def write(self, upload: StoredUpload, stream: ByteStream) -> WriteResult:
        self.refuse_direct_write(upload)
        state = self._state(upload)
        state.check_unfinished(upload.offset)
        if state.consumed:
            await self.staged.delete(state, state.consumed)
            state.consumed = []
        self.staged_cache.retain(state.object_key, state.staged)
        offset = upload.offset
        buffer = bytearray()
        room = max(self.part_size - state.staged_size, 0)  # (0 if the part size was lowered)
        async for chunk in stream:
            view = memoryview(chunk)
            while view:
                taken = view[:room]
                buffer += taken
                offset += len(taken)
                room -= len(taken)
                view = view[len(taken) :]
                if room == 0:
                    await self._upload_full_part(state, buffer)
                    buffer = bytearray()
                    room = self.part_size
        if buffer:
            await self.staged.stage(state, offset - len(buffer), buffer)
        return WriteResult(offset=offset, state=state.to_dict())

    async def held(self, upload: StoredUpload) -> int:
        return upload.offset  # S3 acknowledges a part or object only once it is durable

    async def discard(self, committed: StoredUpload, abandoned: WriteResult) -> None:
        try:
            written = UploadState.from_dict(abandoned.state, self._object_key(committed.key))
        except StorageError:
            return
        # Segments staged by the abandoned write start at or after the committed offset; parts
        # it uploaded are overwritten by the next write or dropped when the upload completes.
        offsets = [s.offset for s in written.staged if s.offset >= committed.offset]
        await self.staged.delete(written, offsets)

    async def finish(self, upload: StoredUpload) -> StoreState:
        state = self._state(upload)
        if state.finished:
            return state.to_dict()
        state.check_unfinished(upload.offset)
        try:
            if upload.offset == 0:
                await self._abort(state.object_key, state.multipart_upload_id)
                await self._put_object(state.object_key, b"")
            else:
                if state.staged:
                    last_part = await self.staged.fetch(state)
                    await self._upload_part(state, last_part)
                    state.staged = []
                await self._complete(state.object_key, state.multipart_upload_id, state.parts)
        except (S3StorageError, BytesMissing) as error:  # the upload or a staged piece is gone
            if isinstance(error, S3StorageError) and not error.missing:
                raise
            await self._confirm_finished(state.object_key, upload.offset)  # finished before
        await self.staged.delete_all(state)
        return UploadState(state.object_key, finished=True, size=upload.offset).to_dict()

    async def terminate(self, upload: StoredUpload) -> None:
        object_key = self._object_key(upload.key)
        with contextlib.suppress(StorageError):
            object_key = UploadState.from_dict(upload.state, object_key).object_key
        await self._remove_upload(object_key)

    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        object_key = self._state(upload).object_key
        try:
            response = await self._request(
                "GetObject",
                Bucket=self.bucket,
                Key=object_key,
                Range=f"bytes={byte_range.start}-{byte_range.end}",
            )
        except S3StorageError as error:
            if error.missing or error.status == 416:  # gone, or shorter than the range's start
                raise BytesMissing(str(error)) from error
            raise
        async with response["Body"] as body:  # closed (connection released) however we stop
            # S3 answers a range reaching past the object's end with what it has: checked before
            # the first byte is given, so a reader can refuse before it answers.
            if int(response.get("ContentLength", byte_range.length)) < byte_range.length:
                raise BytesMissing("S3 object is shorter than its recorded size")
            remaining = byte_range.length
            while remaining > 0:
                data = await self._read_body(body, min(READ_CHUNK, remaining))
                if not data:
                    raise BytesMissing("S3 object is shorter than its recorded size")
                remaining -= len(data)
                yield data

    # -- concatenation -----------------------------------------------------------------------

    async def concatenate(self, key: str, parts: Sequence[StoredUpload]) -> StoreState:
        object_key = self._object_key(key)
        sources = []
        for part in parts:
            state = self._state(part)
            if not state.finished:
                raise StorageError(f"partial upload {part.key} is not finished", retryable=False)
            sources.append((state.object_key, part.offset))
        total = sum(size for _, size in sources)
        await self._abort_all(object_key)  # left by an interrupted earlier attempt
        plan = plan_concatenation(sources)
        if not plan:
            await self._put_object(object_key, b"")
            return UploadState(object_key, finished=True, size=0).to_dict()
        response = await self._request("CreateMultipartUpload", Bucket=self.bucket, Key=object_key)
        state = UploadState(object_key, multipart_upload_id=str(response["UploadId"]))
        try:
            for planned in plan:
                if isinstance(planned, CopyPart):
                    await self._copy_part(state, planned.slice)
                elif isinstance(planned, BufferedPart):
                    buffer = bytearray()
                    for piece in planned.slices:
                        buffer += await self._get(piece.source, piece.start, piece.end)
                    await self._upload_part(state, buffer)
            await self._complete(object_key, state.multipart_upload_id, state.parts)
        except BaseException:
            with contextlib.suppress(StorageError):
                await self._abort(object_key, state.multipart_upload_id)
            raise
        return UploadState(object_key, finished=True, size=total).to_dict()

    # -- orphans -----------------------------------------------------------------------------

    async def list_keys(self, older_than: datetime) -> list[str]:
        if older_than.tzinfo is None:
            older_than = older_than.replace(tzinfo=UTC)
        newest: dict[str, datetime] = {}

        def seen(object_key: str, when: datetime) -> None:
            key = key_of(self.prefix, object_key)
            if key is not None and (key not in newest or when > newest[key]):
                newest[key] = when

        async for upload in self._list_multipart_uploads(self.prefix):
            seen(str(upload["Key"]), upload["Initiated"])
        async for item in self._list_objects(self.prefix):
            seen(str(item["Key"]), item["LastModified"])
        return sorted(key for key, when in newest.items() if when < older_than)

    async def remove_key(self, key: str) -> None:
        await self._remove_upload(self._object_key(key))

    # -- sidecars ----------------------------------------------------------------------------

    async def put_sidecar(self, key: str, name: str, data: bytes) -> None:
        check_sidecar(name, data)
        await self._put_object(f"{self._object_key(key)}{SIDECAR_SUFFIX}/{name}", data)

    async def read_sidecar(self, key: str, name: str) -> bytes | None:
        check_sidecar(name)
        object_key = f"{self._object_key(key)}{SIDECAR_SUFFIX}/{name}"
        return await self._get_small(object_key, MAX_SIDECAR_BYTES)

    # -- helpers -----------------------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        if not key or "/" in key or "\\" in key or key.startswith(".") or ".staging" in key:
            raise StorageError(f"invalid storage key {key!r}", retryable=False)
        return self.prefix + key

    def _state(self, upload: StoredUpload) -> UploadState:
        return UploadState.from_dict(upload.state, self._object_key(upload.key))

    async def _remove_upload(self, object_key: str) -> None:
        """Delete everything the upload holds: its objects and staged pieces, in the bucket
        (staging objects included) and in the database."""
        await self.staged.forget(object_key)
        await self._remove(object_key)

    async def _upload_full_part(self, state: UploadState, buffer: bytearray) -> None:
        """Upload one whole part: the staged segments (folded in front) and then `buffer`."""
        if state.staged:
            buffer[0:0] = await self.staged.fold(state)
        await self._upload_part(state, buffer)

    async def _upload_part(self, state: UploadState, data: bytes | bytearray) -> None:
        number = state.next_part_number
        response = await self._request(
            "UploadPart",
            Bucket=self.bucket,
            Key=state.object_key,
            UploadId=state.multipart_upload_id,
            PartNumber=number,
            Body=data,  # a bytearray is sent as it is: no second copy of the part
        )
        self.bytes_sent += len(data)
        state.parts.append(Part(number, str(response["ETag"]), len(data)))

    async def _copy_part(self, state: UploadState, piece: Slice) -> None:
        number = state.next_part_number
        response = await self._request(
            "UploadPartCopy",
            Bucket=self.bucket,
            Key=state.object_key,
            UploadId=state.multipart_upload_id,
            PartNumber=number,
            CopySource={"Bucket": self.bucket, "Key": piece.source},
            CopySourceRange=f"bytes={piece.start}-{piece.end - 1}",
        )
        self.bytes_copied += piece.size
        state.parts.append(Part(number, str(response["CopyPartResult"]["ETag"]), piece.size))
