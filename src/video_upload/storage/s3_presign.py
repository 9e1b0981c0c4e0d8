"""The S3 store's presigned URLs: UploadPart URLs of direct uploads, with the multipart calls
around them (`DirectUploadStore`, see `video_upload.storage.direct`), and GetObject URLs for
playback (`PlaybackSigningStore`).

The client PUTs each part to a URL signed here, locally, with the store's own credentials (no
request is sent to sign). The URL is signed with SigV4 for exactly one part number of one
multipart upload, and with the part's `Content-Length`, so S3 refuses (403) a body of any other
length: a client cannot put more bytes in a part than the declared file size gives it. It
reaches S3 at `S3_PUBLIC_ENDPOINT_URL` when set, else at `S3_ENDPOINT_URL` (or AWS's own endpoint).

Calls, and the IAM actions they need on `<bucket>/<prefix>*`: CreateMultipartUpload
(`s3:PutObject`), the presigned UploadPart (`s3:PutObject`, checked when the client sends it),
ListParts (`s3:ListMultipartUploadParts`), CompleteMultipartUpload (`s3:PutObject`),
HeadObject (`s3:GetObject`); aborting goes through the store's `terminate`
(`s3:AbortMultipartUpload`, `s3:ListBucketMultipartUploads`).

Some S3 servers (SeaweedFS) list every version of a part that was uploaded more than once,
each with its own ETag; `list_parts` returns them all, and the service picks one (the one the
client names, else the newest). CompleteMultipartUpload takes the version named by its ETag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError

from video_upload.domain.errors import ERR_DIRECT_ONLY, ServiceError
from video_upload.storage.base import StorageError, StoredUpload, StoreState
from video_upload.storage.direct import DIRECT_MARK, ListedPart, finished_state, is_direct
from video_upload.storage.s3_parts import Part, UploadState
from video_upload.storage.s3_requests import S3Requests, S3StorageError

LIST_PAGE = 1000


class S3Presigning(S3Requests):
    """The direct-upload and playback calls of `S3Store` (which provides `prefix`, `part_size`
    and the key checks of `_object_key`)."""

    prefix: str
    part_size: int
    signer: Any  # the client that signs URLs for the endpoint clients reach

    def _object_key(self, key: str) -> str:
        raise NotImplementedError  # S3Store's

    async def create_direct(self, key: str, part_size: int) -> StoreState:
        object_key = self._object_key(key)
        response = await self._request("CreateMultipartUpload", Bucket=self.bucket, Key=object_key)
        return {
            DIRECT_MARK: True,
            "object_key": object_key,
            "multipart_upload_id": str(response["UploadId"]),
            "part_size": part_size,
        }

    def object_key(self, upload: StoredUpload) -> str:
        return str(upload.state.get("object_key") or self._object_key(upload.key))

    async def sign_part(
        self, upload: StoredUpload, number: int, size: int, expires_seconds: int
    ) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": self.object_key(upload),
            "UploadId": _multipart_upload_id(upload),
            "PartNumber": number,
            "ContentLength": size,
        }
        try:
            url = await self.signer.generate_presigned_url(
                "upload_part", Params=params, ExpiresIn=expires_seconds
            )
        except (BotoCoreError, ValueError) as error:
            raise StorageError(f"cannot presign part {number}: {error}", retryable=False) from None
        return str(url)

    async def list_parts(self, upload: StoredUpload) -> list[ListedPart] | None:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.object_key(upload),
            "UploadId": _multipart_upload_id(upload),
            "MaxParts": LIST_PAGE,
        }
        parts: list[ListedPart] = []
        while True:
            try:
                response = await self._request("ListParts", **params)
            except S3StorageError as error:
                if error.missing:
                    return None
                raise
            for item in response.get("Parts") or []:
                parts.append(
                    ListedPart(
                        number=int(item["PartNumber"]),
                        etag=str(item["ETag"]),
                        size=int(item["Size"]),
                        last_modified=item.get("LastModified"),
                    )
                )
            marker = response.get("NextPartNumberMarker")
            if not response.get("IsTruncated") or marker in (None, params.get("PartNumberMarker")):
                return parts
            params["PartNumberMarker"] = marker

    async def complete_direct(
        self, upload: StoredUpload, parts: Sequence[ListedPart], size: int
    ) -> StoreState:
        object_key = self.object_key(upload)
        chosen = [Part(part.number, part.etag, part.size) for part in parts]
        await self._complete(object_key, _multipart_upload_id(upload), chosen)
        return finished_state(object_key, size)

    async def completed_size(self, upload: StoredUpload) -> int | None:
        try:
            head = await self._request(
                "HeadObject", Bucket=self.bucket, Key=self.object_key(upload)
            )
        except S3StorageError as error:
            if error.missing:
                return None
            raise
        return int(head["ContentLength"])

    def refuse_direct_write(self, upload: StoredUpload) -> None:
        """A tus write to a direct upload: its parts are the client's, sent to S3 itself."""
        if is_direct(upload.state):
            raise ServiceError(ERR_DIRECT_ONLY)

    async def playback_url(
        self, upload: StoredUpload, content_type: str, expires_seconds: int
    ) -> str:
        """A presigned GetObject URL of the finished upload's object (PlaybackSigningStore),
        answered with `content_type`. Signed locally with the client's credentials: no request
        is sent, and the URL reaches S3 at S3_PUBLIC_ENDPOINT_URL, else S3_ENDPOINT_URL."""
        state = UploadState.from_dict(upload.state, self._object_key(upload.key))
        if not state.finished:
            raise StorageError("only a finished upload can be played", retryable=False)
        params = {
            "Bucket": self.bucket,
            "Key": state.object_key,
            "ResponseContentType": content_type,
        }
        try:
            url = await self.signer.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_seconds
            )
        except (BotoCoreError, ValueError) as error:
            message = f"cannot presign the video's URL: {error}"
            raise StorageError(message, retryable=False) from None
        return str(url)


def _multipart_upload_id(upload: StoredUpload) -> str:
    value = upload.state.get("multipart_upload_id")
    if not value:
        raise StorageError("direct upload has no multipart upload", retryable=False)
    return str(value)
