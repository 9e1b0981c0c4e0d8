"""Reading videos back: one record, its bytes with HTTP Range support, a signed playback URL,
its thumbnail.

The bytes answer the owner's token, or instead a signed URL that `/playback` handed out (its
`expires` and `signature` query parameters; see `http.signed_urls`), which a `<video>` element
can use since it cannot send an Authorization header.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from video_upload.domain.errors import (
    ERR_CONTENT_MISSING,
    ERR_STORAGE_FAILED,
    ERR_STORAGE_UNAVAILABLE,
    ErrorKind,
    ServiceError,
)
from video_upload.domain.records import Video
from video_upload.http import signed_urls
from video_upload.http.rest.deps import CatalogDep, CurrentUser
from video_upload.http.rest.schemas import ERROR_RESPONSES, ErrorResponse, VideoOut
from video_upload.http.services import services_of
from video_upload.http.tus.bounds import usable_user_id
from video_upload.storage.base import ByteRange, BytesMissing, StorageError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/videos", tags=["videos"], responses=ERROR_RESPONSES)

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
# A position of more digits than this is past the end of any file the service keeps (and int()
# refuses strings of 4,300 digits or more): it counts as "beyond the end", never parsed.
_MAX_DIGITS = 18
_BEYOND = 10**_MAX_DIGITS


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else _BEYOND


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """A single `bytes=` range clipped to the size; None means the whole file.

    Several ranges, a malformed header or an invalid range (last before first) are ignored (the
    whole file is sent), as RFC 9110 allows; a valid range that starts past the end, however
    large its numbers, is 416.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = _position(first)
    if last and _position(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    end = min(_position(last), size - 1) if last else size - 1
    return ByteRange(start, end)


def _unsatisfiable(size: int) -> ServiceError:
    return ServiceError(
        ErrorKind(
            "range_not_satisfiable",
            416,
            "requested range not satisfiable",
            headers={"Content-Range": f"bytes */{size}"},
        )
    )


@router.get("/{video_id}", response_model=VideoOut)
async def get_video(video_id: uuid.UUID, user: CurrentUser, catalog: CatalogDep) -> VideoOut:
    return VideoOut.of(await catalog.video(user, video_id))


class PlaybackOut(BaseModel):
    url: str = Field(
        description="absolute; GET (with Range) needs no Authorization header until expires_at"
    )
    expires_at: datetime


@router.get(
    "/{video_id}/playback",
    response_model=PlaybackOut,
    responses={
        404: {"model": ErrorResponse, "description": "No such video, or it was rejected"},
        409: {"model": ErrorResponse, "description": "The video is not completed (yet)"},
    },
)
async def video_playback(
    video_id: uuid.UUID, request: Request, user: CurrentUser, catalog: CatalogDep
) -> PlaybackOut:
    """A short-lived URL to play a completed video from, for a `<video src>`: a presigned S3
    GetObject on S3, the content endpoint with an HMAC signature and expiry on the local store.
    It expires after `PLAYBACK_URL_SECONDS`; ask again for a new one."""
    video = await catalog.video(user, video_id)
    found = await signed_urls.playback(request, video)
    return PlaybackOut(url=found.url, expires_at=found.expires_at)


async def _reader(
    video_id: uuid.UUID,
    request: Request,
    expires: Annotated[
        str | None,
        Query(description="with `signature`: a signed URL from `/playback`, no token needed"),
    ] = None,
    signature: Annotated[str | None, Query(description="HMAC-SHA256 from `/playback`")] = None,
) -> str:
    """Who reads the bytes: the video's owner when the query carries a valid signed URL's
    parameters (403 when they are wrong or expired), else the bearer token's user."""
    if expires is not None or signature is not None:
        signed_urls.check_signed(request, video_id, expires, signature)
        return await signed_urls.owner_of(services_of(request), video_id)
    authenticator = services_of(request).authenticator
    return usable_user_id(authenticator.user_from_header(request.headers.get("authorization")))


ContentReader = Annotated[str, Depends(_reader)]


@router.get(
    "/{video_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"video/mp4": {}}},
        206: {"description": "Partial content"},
        403: {
            "model": ErrorResponse,
            "description": "Another user's video, or a signed URL that is invalid or expired",
        },
        416: {"model": ErrorResponse, "description": "Range not satisfiable"},
        404: {
            "model": ErrorResponse,
            "description": "Not found, or (content_missing) the video's bytes are gone",
        },
    },
)
async def video_content(
    video_id: uuid.UUID, request: Request, user: ContentReader, catalog: CatalogDep
) -> Response:
    """The video's bytes (a single `Range` gives 206), for the owner's token or a signed URL
    from `/playback`. Storage is read before the answer starts: bytes that are gone answer 404
    `content_missing`, a storage outage 503."""
    video = await catalog.video(user, video_id)
    size = video.upload_offset
    byte_range = parse_range(request.headers.get("range"), size)
    content = await catalog.content(user, video_id, byte_range)
    headers = _content_headers(content.video, size)
    if size == 0:
        return Response(status_code=200, headers=headers, media_type=video.content_type)
    chunks = await _started(content.chunks)
    headers["Content-Length"] = str(content.byte_range.length)
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    return StreamingResponse(
        chunks, status_code=status, headers=headers, media_type=video.content_type
    )


@router.head("/{video_id}/content", response_class=Response, responses={200: {}})
async def video_content_head(
    video_id: uuid.UUID, user: ContentReader, catalog: CatalogDep
) -> Response:
    """What GET would send, without the bytes: length, type, `Accept-Ranges`. The last byte is
    read from storage, so bytes that are gone or cut short answer 404 here too."""
    video = await catalog.video(user, video_id)
    size = video.upload_offset
    last_byte = ByteRange(size - 1, size - 1) if size else None
    content = await catalog.content(user, video_id, last_byte)
    if last_byte is not None:  # content.chunks reads just that byte
        try:
            async for _ in content.chunks:
                pass
        except StorageError as error:
            raise _unreadable(error) from error
    headers = _content_headers(content.video, size)
    return Response(status_code=200, headers=headers, media_type=video.content_type)


def _content_headers(video: Video, size: int) -> dict[str, str]:
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(size),
        "Cache-Control": "private, max-age=0",
    }
    if video.filename:
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{_quote(video.filename)}"
    return headers


async def _started(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks` with its first chunk already read: a store that cannot give it fails the
    request before any header is sent, instead of a 200 cut off after its headers."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except StorageError as error:
        raise _unreadable(error) from error

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return rest()


def _unreadable(error: StorageError) -> ServiceError:
    """The answer for a finished video's bytes that the store cannot read: gone (404) when the
    file or object does not exist or is shorter than recorded, else the outage (503/500)."""
    log.warning("cannot read a finished video's bytes: %s", error)
    if isinstance(error, BytesMissing):
        return ServiceError(ERR_CONTENT_MISSING)
    return ServiceError(ERR_STORAGE_UNAVAILABLE if error.retryable else ERR_STORAGE_FAILED)


@router.get(
    "/{video_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "A JPEG about 10% in"}},
)
async def video_thumbnail(video_id: uuid.UUID, user: CurrentUser, catalog: CatalogDep) -> Response:
    """The JPEG thumbnail taken when the video was completed (404 when it has none)."""
    data = await catalog.thumbnail(user, video_id)
    headers = {"Cache-Control": "private, max-age=3600"}
    return Response(content=data, media_type="image/jpeg", headers=headers)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
