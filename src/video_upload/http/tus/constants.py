"""tus 1.0.0 protocol constants: version, header names, extensions."""

from __future__ import annotations

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

TUS_RESUMABLE = "Tus-Resumable"
TUS_VERSION_HEADER = "Tus-Version"
TUS_EXTENSION = "Tus-Extension"
TUS_MAX_SIZE = "Tus-Max-Size"
TUS_CHECKSUM_ALGORITHM = "Tus-Checksum-Algorithm"
UPLOAD_OFFSET = "Upload-Offset"
UPLOAD_LENGTH = "Upload-Length"
UPLOAD_DEFER_LENGTH = "Upload-Defer-Length"
UPLOAD_METADATA = "Upload-Metadata"
UPLOAD_EXPIRES = "Upload-Expires"
UPLOAD_CHECKSUM = "Upload-Checksum"
UPLOAD_CONCAT = "Upload-Concat"
METHOD_OVERRIDE = "X-HTTP-Method-Override"

# Extensions every store supports; concatenation is added when the store can concatenate.
# checksum-trailer is not offered: uvicorn (h11 and httptools) drops HTTP request trailers
# before the ASGI application sees them, so a trailer checksum could never be verified.
CORE_EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "checksum",
    "expiration",
)
CONCAT_EXTENSIONS = ("concatenation", "concatenation-unfinished")

EXPOSED_HEADERS = (
    TUS_RESUMABLE,
    TUS_VERSION_HEADER,
    TUS_EXTENSION,
    TUS_MAX_SIZE,
    TUS_CHECKSUM_ALGORITHM,
    UPLOAD_OFFSET,
    UPLOAD_LENGTH,
    UPLOAD_DEFER_LENGTH,
    UPLOAD_METADATA,
    UPLOAD_EXPIRES,
    UPLOAD_CONCAT,
    "Location",
    "Retry-After",
    "X-Request-ID",
)
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    TUS_RESUMABLE,
    UPLOAD_OFFSET,
    UPLOAD_LENGTH,
    UPLOAD_DEFER_LENGTH,
    UPLOAD_METADATA,
    UPLOAD_CHECKSUM,
    UPLOAD_CONCAT,
    METHOD_OVERRIDE,
    "X-Request-ID",
    "X-Requested-With",
)
ALLOWED_METHODS = ("GET", "POST", "HEAD", "PATCH", "DELETE", "OPTIONS")
