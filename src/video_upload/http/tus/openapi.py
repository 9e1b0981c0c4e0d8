"""What the OpenAPI document (`/openapi.json`, `/docs`) says of the tus endpoints.

The handlers read their headers themselves (tus is a header protocol, and the PATCH path must
stay lean), so FastAPI cannot see them: this module declares, per operation, the request headers
it reads, the body it takes, and every status it can answer with. tus errors are plain text, so
no JSON schema is given for them. (The bearer scheme they require is declared with the REST
API's, in `api.openapi`.)
"""

from __future__ import annotations

from typing import Any, TypedDict

from video_upload.http.tus import constants as tus

_PLAIN_TEXT = {"text/plain": {"schema": {"type": "string"}}}


def _header(name: str, description: str, *, required: bool = False, **schema: Any) -> Any:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string", **schema},
    }


_VERSION = _header(
    tus.TUS_RESUMABLE,
    "The tus version the client speaks; anything but 1.0.0 is answered with 412.",
    required=True,
    enum=[tus.TUS_VERSION],
)
_LENGTH = _header(tus.UPLOAD_LENGTH, "The upload's total size in bytes.", pattern="^[0-9]+$")
_DEFER_LENGTH = _header(
    tus.UPLOAD_DEFER_LENGTH,
    "1 when the size is not known yet; a later PATCH then declares Upload-Length.",
    enum=["1"],
)
_METADATA = _header(
    tus.UPLOAD_METADATA,
    "Comma-separated `key base64(value)` pairs; `session_id` names the practice session, "
    "`filename` and `filetype` describe the video.",
)
_CONCAT = _header(
    tus.UPLOAD_CONCAT,
    "`partial` for a part of a parallel upload, `final;<url> <url> ...` to join parts.",
)
_OFFSET = _header(
    tus.UPLOAD_OFFSET,
    "Where this chunk starts; must equal the upload's current offset (else 409).",
    required=True,
    pattern="^[0-9]+$",
)
_CHECKSUM = _header(
    tus.UPLOAD_CHECKSUM,
    "`<algorithm> base64(digest)` of this chunk (sha1, md5, sha256, sha512); on a mismatch the "
    "chunk is dropped and the answer is 460.",
)
_CHUNK_BODY = {
    "required": True,
    "content": {
        tus.OFFSET_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}},
    },
}
_CREATION_BODY = {**_CHUNK_BODY, "required": False}

_ANSWERS = {
    400: "Malformed tus headers (length, offset, metadata over 4 KiB, a filetype that is not a "
    "media type, checksum or concatenation), or a Host that is not a valid host[:port]",
    401: "Missing or invalid bearer token",
    403: "The upload belongs to another user, or is a final concatenation (read-only)",
    404: "No such upload (or the practice session named in the metadata does not exist)",
    409: "Upload-Offset (or Upload-Length) does not match the upload",
    410: "The upload expired or was terminated",
    412: "Tus-Resumable is missing or not 1.0.0 (the answer carries Tus-Version)",
    413: "The upload, or this chunk, goes past the allowed or declared size",
    415: "The body's Content-Type is not application/offset+octet-stream, or not a video",
    423: "Another request is writing to this upload; retry shortly",
    460: "The chunk's checksum does not match; nothing of it was kept",
    503: "Database or storage temporarily unavailable; retry after Retry-After",
    507: "The disk has no room for the rest of this upload; the committed bytes stay, retry "
    "after Retry-After",
}


def _answers(success: int, description: str, statuses: list[int]) -> dict[int | str, Any]:
    answers: dict[int | str, Any] = {success: {"description": description}}
    for status in statuses:
        answers[status] = {"description": _ANSWERS[status], "content": _PLAIN_TEXT}
    # (also keeps FastAPI from listing its JSON 422, which these handlers never send)
    answers["default"] = {"description": "Any other error, as plain text", "content": _PLAIN_TEXT}
    return answers


class Documented(TypedDict):
    """Keyword arguments for a route decorator."""

    responses: dict[int | str, Any]
    openapi_extra: dict[str, Any]


def _extra(*headers: Any, body: dict[str, Any] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"parameters": [_VERSION, *headers]}
    if body is not None:
        extra["requestBody"] = body
    return extra


CREATE: Documented = {
    "responses": _answers(
        201,
        "Created: Location is the upload's absolute URL (with Upload-Offset when a body was "
        "sent). A body that is refused (413, 460) leaves no upload behind",
        [400, 401, 403, 404, 412, 413, 415, 423, 460, 503, 507],
    ),
    "openapi_extra": _extra(
        _LENGTH, _DEFER_LENGTH, _METADATA, _CONCAT, _CHECKSUM, body=_CREATION_BODY
    ),
}
CREATE_INITIALISED: Documented = {
    "responses": _answers(
        201,
        "The REST-initialised upload, adopted (its Upload-Metadata kept): Location is its "
        "absolute URL, also on a refused body",
        [400, 401, 403, 404, 409, 410, 412, 413, 415, 423, 460, 503, 507],
    ),
    "openapi_extra": _extra(_LENGTH, _CHECKSUM, body=_CREATION_BODY),
}
HEAD: Documented = {
    "responses": _answers(
        200,
        "Upload-Offset, and Upload-Length or Upload-Defer-Length, Upload-Metadata, "
        "Upload-Expires and Upload-Concat where they apply",
        [401, 403, 404, 410, 412, 423, 503],
    ),
    "openapi_extra": _extra(),
}
PATCH: Documented = {
    "responses": _answers(
        204,
        "Stored: Upload-Offset is the new offset",
        [400, 401, 403, 404, 409, 410, 412, 413, 415, 423, 460, 503, 507],
    ),
    "openapi_extra": _extra(_OFFSET, _LENGTH, _CHECKSUM, body=_CHUNK_BODY),
}
DELETE: Documented = {
    "responses": _answers(
        204,
        "Terminated: the upload and its bytes are gone",
        [401, 403, 404, 410, 412, 423, 503],
    ),
    "openapi_extra": _extra(),
}
