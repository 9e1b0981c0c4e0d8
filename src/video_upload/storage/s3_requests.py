"""The request layer of the S3 store: one bucket, one client, every request counted and every
failure translated into `StorageError` (see `video_upload.storage.s3` for the design).

botocore's exceptions stop here: `S3StorageError` (a `StorageError`) carries the S3 error code so
the store can tell "no such upload" from other failures without touching botocore.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from video_upload import metrics
from video_upload.storage.base import SIDECAR_SUFFIX, StorageError
from video_upload.storage.s3_parts import Part, belongs_to

DELETE_BATCH = 1000

_FOREIGN_ERRORS = (ClientError, BotoCoreError, aiohttp.ClientError, OSError)
_TRANSIENT_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError)
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "SlowDown",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)
_MISSING_CODES = frozenset({"NoSuchUpload", "NoSuchKey", "NotFound", "404"})


class S3StorageError(StorageError):
    """A failed S3 request, with the S3 error code (empty for connection problems)."""

    def __init__(self, message: str, *, retryable: bool, code: str = "", status: int = 0) -> None:
        super().__init__(message, retryable=retryable)
        self.code = code
        self.status = status

    @property
    def missing(self) -> bool:
        """Whether S3 said the object or multipart upload does not exist."""
        return self.code in _MISSING_CODES


def _translate(operation: str, error: Exception) -> S3StorageError:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        retryable = status >= 500 or status == 429 or code in _THROTTLING_CODES
        message = f"S3 {operation} failed: {code or status} {details.get('Message', '')}".strip()
        return S3StorageError(message, retryable=retryable, code=code, status=status)
    retryable = isinstance(error, (*_TRANSIENT_ERRORS, aiohttp.ClientError, OSError))
    return S3StorageError(f"S3 {operation} failed: {error}", retryable=retryable)


class S3Requests:
    """The S3 requests the store makes, on one bucket through one long-lived client.

    `request_counts` counts requests by operation name (retries inside botocore count once),
    `bytes_sent` the bytes of PutObject and UploadPart bodies, `bytes_received` the bytes read
    from GetObject bodies and `bytes_copied` the bytes copied server-side by UploadPartCopy.
    """

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket
        self.request_counts: Counter[str] = Counter()
        self.bytes_sent = 0
        self.bytes_received = 0
        self.bytes_copied = 0

    async def _request(self, operation: str, **params: Any) -> dict[str, Any]:
        """Send one S3 request, counting it and translating its failures."""
        self.request_counts[operation] += 1
        method = getattr(self._client, xform_name(operation))
        started = time.perf_counter()
        try:
            response: dict[str, Any] = await method(**params)
        except _FOREIGN_ERRORS as error:
            raise _translate(operation, error) from error
        finally:
            metrics.s3_request_seconds.labels(operation).observe(time.perf_counter() - started)
        return response

    async def _read_body(self, body: Any, amount: int | None = None) -> bytes:
        try:
            data: bytes = await body.read(amount)
        except _FOREIGN_ERRORS as error:
            raise _translate("GetObject", error) from error
        self.bytes_received += len(data)
        return data

    async def _ensure_bucket(self, region: str) -> None:
        try:
            await self._request("HeadBucket", Bucket=self.bucket)
            return
        except S3StorageError as error:
            if error.status != 404 and error.code not in {"NoSuchBucket", "NotFound", "404"}:
                raise
        params: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await self._request("CreateBucket", **params)
        except S3StorageError as error:
            if error.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    async def _put_object(self, object_key: str, data: bytes | bytearray) -> str | None:
        """Put a whole object; its ETag (None if S3 gave none)."""
        response = await self._request("PutObject", Bucket=self.bucket, Key=object_key, Body=data)
        self.bytes_sent += len(data)
        etag = response.get("ETag")
        return None if etag is None else str(etag)

    async def _get(self, object_key: str, start: int, end: int) -> bytes:
        """Download bytes [start, end) of an object; the caller keeps them in memory."""
        response = await self._request(
            "GetObject", Bucket=self.bucket, Key=object_key, Range=f"bytes={start}-{end - 1}"
        )
        async with response["Body"] as body:
            data = await self._read_body(body)
        if len(data) != end - start:
            raise StorageError(f"S3 object {object_key} is shorter than recorded")
        return data

    async def _get_small(self, object_key: str, limit: int) -> bytes | None:
        """A whole small object (at most `limit` bytes), or None when it does not exist."""
        try:
            response = await self._request("GetObject", Bucket=self.bucket, Key=object_key)
        except S3StorageError as error:
            if error.missing:
                return None
            raise
        async with response["Body"] as body:
            if int(response.get("ContentLength") or 0) > limit:
                raise StorageError(f"S3 object {object_key} is larger than {limit} bytes")
            return await self._read_body(body)

    async def _complete(self, object_key: str, upload_id: str | None, parts: list[Part]) -> None:
        await self._request(
            "CompleteMultipartUpload",
            Bucket=self.bucket,
            Key=object_key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
        )

    async def _abort(self, object_key: str, upload_id: str | None) -> None:
        if upload_id is None:
            return
        try:
            await self._request(
                "AbortMultipartUpload", Bucket=self.bucket, Key=object_key, UploadId=upload_id
            )
        except S3StorageError as error:
            if not error.missing:
                raise

    async def _abort_all(self, object_key: str) -> None:
        async for upload in self._list_multipart_uploads(object_key):
            if upload["Key"] == object_key:
                await self._abort(object_key, str(upload["UploadId"]))

    async def _delete_objects(self, keys: list[str]) -> None:
        for first in range(0, len(keys), DELETE_BATCH):
            batch = keys[first : first + DELETE_BATCH]
            response = await self._request(
                "DeleteObjects",
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                raise StorageError(f"S3 could not delete {len(errors)} object(s): {errors[0]}")

    async def _list_objects(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            response = await self._request("ListObjectsV2", **params)
            for item in response.get("Contents") or []:
                yield item
            if not response.get("IsTruncated"):
                return
            params["ContinuationToken"] = response["NextContinuationToken"]

    async def _list_multipart_uploads(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            response = await self._request("ListMultipartUploads", **params)
            for upload in response.get("Uploads") or []:
                yield upload
            if not response.get("IsTruncated"):
                return
            params["KeyMarker"] = response.get("NextKeyMarker", "")
            params["UploadIdMarker"] = response.get("NextUploadIdMarker", "")

    async def _confirm_finished(self, object_key: str, size: int) -> None:
        """After a 'no such upload': succeed only if an earlier finish completed the object."""
        try:
            head = await self._request("HeadObject", Bucket=self.bucket, Key=object_key)
        except S3StorageError as error:
            if error.missing:
                raise StorageError("multipart upload is gone", retryable=False) from None
            raise
        if int(head["ContentLength"]) != size:
            raise StorageError("S3 object does not have the upload's size", retryable=False)

    async def _remove(self, object_key: str) -> None:
        """Delete everything stored for one upload: multipart uploads, object, staging, sidecars."""
        await self._abort_all(object_key)
        sidecars = f"{object_key}{SIDECAR_SUFFIX}/"
        keys = [
            str(item["Key"])
            async for item in self._list_objects(object_key)
            if belongs_to(object_key, str(item["Key"])) or str(item["Key"]).startswith(sidecars)
        ]
        await self._delete_objects(keys)
