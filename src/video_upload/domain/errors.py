"""The error table: every failure a client can see, with its status code and message.

Errors are data. The service raises `ServiceError(ERR_X)` or `ERR_X.with_message(...)`; the tus
layer answers with the status and a plain-text message, the REST layer with a JSON body
`{"error": {"code", "message"}}`. Anything else that escapes is a logged 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class ErrorKind:
    code: str
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def with_message(self, message: str, **details: Any) -> ServiceError:
        return ServiceError(replace(self, message=message, details={**self.details, **details}))

    def with_headers(self, **headers: str) -> ServiceError:
        return ServiceError(replace(self, headers={**self.headers, **headers}))


class ServiceError(Exception):
    """An expected failure with a client-facing answer."""

    def __init__(self, kind: ErrorKind) -> None:
        super().__init__(kind.message)
        self.kind = kind


ERR_UNAUTHORIZED = ErrorKind("unauthorized", 401, "missing or invalid bearer token")
ERR_FORBIDDEN = ErrorKind("forbidden", 403, "you do not have access to this resource")
ERR_SESSION_NOT_FOUND = ErrorKind("session_not_found", 404, "practice session not found")
ERR_UPLOAD_NOT_FOUND = ErrorKind("upload_not_found", 404, "upload not found")
ERR_VIDEO_NOT_FOUND = ErrorKind("video_not_found", 404, "video not found")
ERR_UPLOAD_GONE = ErrorKind("upload_expired", 410, "upload expired")
ERR_BAD_REQUEST = ErrorKind("bad_request", 400, "invalid request")
ERR_INVALID_LENGTH = ErrorKind("invalid_upload_length", 400, "invalid Upload-Length")
ERR_INVALID_OFFSET = ErrorKind("invalid_upload_offset", 400, "invalid Upload-Offset")
ERR_INVALID_METADATA = ErrorKind("invalid_metadata", 400, "invalid Upload-Metadata")
ERR_INVALID_CONCAT = ErrorKind("invalid_concat", 400, "invalid Upload-Concat")
ERR_UNSUPPORTED_CHECKSUM = ErrorKind(
    "unsupported_checksum_algorithm", 400, "unsupported checksum algorithm"
)
ERR_INVALID_CHECKSUM = ErrorKind("invalid_checksum", 400, "invalid Upload-Checksum")
ERR_INVALID_DURATION = ErrorKind("invalid_duration", 400, "invalid video duration")
ERR_INVALID_CONTENT_TYPE = ErrorKind(
    "invalid_content_type", 400, "the content type is not a valid media type"
)
ERR_INVALID_HOST = ErrorKind(
    "invalid_host", 400, "the Host header is not a valid host[:port]; upload URLs need one"
)
ERR_NOT_A_VIDEO = ErrorKind("unsupported_media_type", 415, "only video files can be uploaded")
ERR_OFFSET_MISMATCH = ErrorKind("offset_mismatch", 409, "Upload-Offset does not match")
ERR_LENGTH_MISMATCH = ErrorKind("length_mismatch", 409, "Upload-Length does not match")
ERR_UPLOAD_INCOMPLETE = ErrorKind("upload_incomplete", 409, "upload is not complete yet")
ERR_UPLOAD_LOCKED = ErrorKind(
    "upload_locked", 423, "another request is writing to this upload; retry shortly"
)
ERR_TOO_LARGE = ErrorKind("file_too_large", 413, "file exceeds the maximum upload size")
ERR_EXCEEDS_LENGTH = ErrorKind("exceeds_upload_length", 413, "body goes past Upload-Length")
ERR_WRONG_CONTENT_TYPE = ErrorKind(
    "unsupported_content_type", 415, "Content-Type must be application/offset+octet-stream"
)
ERR_CHECKSUM_MISMATCH = ErrorKind("checksum_mismatch", 460, "checksum mismatch")
ERR_FINAL_UPLOAD_PATCH = ErrorKind("final_upload", 403, "a final concatenated upload is read-only")
ERR_STORAGE_UNAVAILABLE = ErrorKind(
    "storage_unavailable", 503, "storage is temporarily unavailable; retry", {"Retry-After": "1"}
)
ERR_DATABASE_UNAVAILABLE = ErrorKind(
    "database_unavailable", 503, "database is temporarily unavailable; retry", {"Retry-After": "1"}
)
ERR_STORAGE_FAILED = ErrorKind("storage_failed", 500, "storage failed")
ERR_STORAGE_FULL = ErrorKind(
    "insufficient_storage",
    507,
    "not enough storage space for this upload; retry later",
    {"Retry-After": "60"},
)
# What the probe on completion can say about a file (see video_upload.media).
ERR_INVALID_VIDEO = ErrorKind("not_a_video", 422, "the file is not a decodable video")
ERR_VIDEO_TOO_LONG = ErrorKind("video_too_long", 422, "the video is longer than allowed")
ERR_PROBE_FAILED = ErrorKind("probe_failed", 422, "the video could not be examined")
ERR_THUMBNAIL_NOT_FOUND = ErrorKind("thumbnail_not_found", 404, "this video has no thumbnail")
ERR_CONTENT_MISSING = ErrorKind(
    "content_missing", 404, "the video's bytes are missing from storage"
)
# The per-user limits (see lifecycle.quotas); nothing already stored is touched by them.
ERR_TOO_MANY_UNFINISHED = ErrorKind(
    "too_many_unfinished_uploads",
    403,
    "too many unfinished uploads; finish or delete some first",
)
ERR_UNFINISHED_QUOTA = ErrorKind(
    "unfinished_quota_exceeded", 413, "your unfinished uploads would exceed your quota"
)
ERR_STORED_QUOTA = ErrorKind("storage_quota_exceeded", 413, "your videos would exceed your quota")
ERR_CREATION_RATE = ErrorKind(
    "rate_limited", 429, "too many uploads started in the last minute", {"Retry-After": "60"}
)
# Signed playback URLs (see http.signed_urls): only a completed video gets one; a URL whose
# signature does not match, or whose time is up, is refused whoever sends it.
ERR_VIDEO_NOT_READY = ErrorKind(
    "video_not_ready", 409, "only a completed video can be played; complete the upload first"
)
ERR_BAD_SIGNATURE = ErrorKind("invalid_signature", 403, "the URL's signature is not valid")
ERR_SIGNATURE_EXPIRED = ErrorKind("signature_expired", 403, "the signed URL has expired")
REJECTIONS = {kind.code: kind for kind in (ERR_INVALID_VIDEO, ERR_VIDEO_TOO_LONG, ERR_PROBE_FAILED)}
# Direct uploads (see lifecycle.direct): the client sends its parts straight to S3 through
# presigned UploadPart URLs, and the service creates, lists, completes and aborts the upload.
ERR_DIRECT_UNAVAILABLE = ErrorKind(
    "direct_uploads_unavailable",
    404,
    "direct uploads need S3 storage (STORAGE_BACKEND=s3); upload with tus instead",
)
ERR_NOT_DIRECT = ErrorKind(
    "not_a_direct_upload", 409, "this upload takes its bytes through tus, not presigned parts"
)
ERR_DIRECT_ONLY = ErrorKind(
    "direct_upload",
    409,
    "this upload's parts go straight to S3 through presigned URLs; tus cannot write to it",
)
ERR_KEY_MISMATCH = ErrorKind("key_mismatch", 400, "key does not name this upload's object")
ERR_INVALID_PART_NUMBER = ErrorKind(
    "invalid_part_number", 400, "the part number is outside what the declared file size allows"
)
ERR_UPLOAD_FINISHED = ErrorKind("upload_already_completed", 409, "this upload is already complete")
ERR_PARTS_INCOMPLETE = ErrorKind(
    "parts_incomplete", 409, "the parts S3 holds do not add up to the declared file size"
)
ERR_PART_MISMATCH = ErrorKind(
    "part_mismatch", 409, "S3 holds another version of a part than the client uploaded"
)
ERR_MULTIPART_REQUIRED = ErrorKind(
    "multipart_required",
    400,
    "direct uploads are multipart only: set Uppy's shouldUseMultipart to true",
)
