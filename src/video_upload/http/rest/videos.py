"""Reading videos back: one record, its bytes with HTTP Range support, its thumbnail."""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from video_upload.domain.errors import ErrorKind, ServiceError
from video_upload.http.rest.deps import CatalogDep, CurrentUser
from video_upload.http.rest.schemas import ERROR_RESPONSES, ErrorResponse, VideoOut
from video_upload.storage.base import ByteRange

router = APIRouter(prefix="/api/v1/videos", tags=["videos"], responses=ERROR_RESPONSES)

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """A single `bytes=` range clipped to the size; None means the whole file.

    Several ranges, or a malformed header, are ignored (the whole file is sent), as RFC 9110
    allows; a well-formed range that starts past the end is 416.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise _unsatisfiable(size)
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


@router.get(
    "/{video_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"video/mp4": {}}},
        206: {"description": "Partial content"},
        416: {"model": ErrorResponse, "description": "Range not satisfiable"},
    },
)
async def video_content(
    video_id: uuid.UUID, request: Request, user: CurrentUser, catalog: CatalogDep
) -> Response:
    video = await catalog.video(user, video_id)
    size = video.upload_offset
    byte_range = parse_range(request.headers.get("range"), size)
    content = await catalog.content(user, video_id, byte_range)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(content.byte_range.length if size else 0),
        "Cache-Control": "private, max-age=0",
    }
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    if video.filename:
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{_quote(video.filename)}"
    return StreamingResponse(
        content.chunks, status_code=status, headers=headers, media_type=video.content_type
    )


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
