"""Direct uploads to S3 through presigned part URLs, with the routes and JSON of Uppy
Companion's S3 multipart API, so that `@uppy/aws-s3` (v5, `endpoint: <this prefix>`, the token
in `headers`) uploads to the service with no callbacks of its own.

    POST   /s3/multipart                       {filename, type, metadata} -> {uploadId, key, ...}
    GET    /s3/multipart/{uploadId}/{part}?key  -> {url, expires, ...}: a presigned UploadPart
    GET    /s3/multipart/{uploadId}?key         -> [{PartNumber, Size, ETag}]: the parts S3 holds
    POST   /s3/multipart/{uploadId}/complete?key {parts: [{PartNumber, ETag}]} -> {location, ...}
    DELETE /s3/multipart/{uploadId}?key         -> {}: the multipart upload is aborted
    GET    /s3/params                            -> 400: direct uploads are multipart only

`uploadId` is the service's upload id (as `upload/init` gives it) and `key` the S3 key the service
chose. The rules are in `video_upload.lifecycle.direct`; docs/direct-uploads.md tells the whole
of it. Errors carry, beside the usual `{"error": {...}}`, a top-level `message`, which Uppy shows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from video_upload.domain.errors import ERR_MULTIPART_REQUIRED, ErrorKind, ServiceError
from video_upload.http.rest.deps import CurrentUser, ServicesDep
from video_upload.http.rest.errors import error_json, validation_problems
from video_upload.http.rest.schemas import ERROR_RESPONSES, NO_NUL_PATTERN, VideoOut
from video_upload.http.tus.bounds import UPLOAD_ID_PATTERN
from video_upload.http.tus.headers import RequestHeaders
from video_upload.http.tus.public_url import base_url
from video_upload.lifecycle.direct import ClaimedPart, DirectRequest, DirectUploads

PREFIX = "/api/v1/videos/direct"
VIDEOS_PATH = "/api/v1/videos"


class UppyErrorRoute(APIRoute):
    """Answers this router's errors as the REST API does, plus a top-level `message`: Uppy's
    request client shows a 4xx body's `message` to the user and ignores the rest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as error:
                return _with_message(error.kind)
            except RequestValidationError as error:
                problems = validation_problems(error)
                where = ", ".join(problem["field"] for problem in problems if problem["field"])
                kind = ErrorKind(
                    "validation_error",
                    422,
                    f"the request is invalid ({where or 'body'})",
                    details={"fields": problems},
                )
                return _with_message(kind)

        return route


def _with_message(kind: ErrorKind) -> Response:
    response = error_json(kind)
    return JSONResponse(
        {**json.loads(bytes(response.body)), "message": kind.message},
        status_code=kind.status,
        headers=kind.headers,
    )


router = APIRouter(
    prefix=PREFIX,
    tags=["direct uploads"],
    responses=ERROR_RESPONSES,
    route_class=UppyErrorRoute,
)

UploadId = Annotated[
    str, Path(pattern=UPLOAD_ID_PATTERN, description="the `uploadId` the creation gave")
]
Key = Annotated[
    str, Query(min_length=1, max_length=1024, description="the `key` the creation gave")
]


class DirectMetadata(BaseModel):
    """The file's Uppy metadata (`meta`): what `upload/init` takes besides the name and type.
    Uppy sends every value as a string; other fields (name, type, ...) are ignored."""

    session_id: uuid.UUID
    file_size: int = Field(description="bytes, at most MAX_VIDEO_SIZE_MB")
    duration_seconds: float = Field(description="seconds, at most MAX_VIDEO_DURATION_MINUTES")


class DirectCreate(BaseModel):
    filename: str = Field(
        default="", max_length=1024, pattern=NO_NUL_PATTERN, description="the file's name"
    )
    type: str | None = Field(
        default=None,
        max_length=255,
        description="its media type, e.g. video/mp4; by default guessed from the name",
    )
    metadata: DirectMetadata


class DirectCreated(BaseModel):
    uploadId: str = Field(description="the service's upload id (also for `upload/.../status`)")
    key: str = Field(description="the S3 key the service chose for the object")
    videoId: uuid.UUID
    partSize: int = Field(description="every part but the last has exactly this many bytes")
    partCount: int
    expiresAt: datetime | None = Field(description="when an unfinished upload is cleaned up")


class SignedPartOut(BaseModel):
    url: str = Field(description="PUT the part here, with exactly `size` bytes")
    expires: int = Field(description="seconds the URL stays valid")
    partNumber: int
    size: int


class PartOut(BaseModel):
    PartNumber: int
    Size: int
    ETag: str


class PartIn(BaseModel):
    PartNumber: int
    ETag: str = Field(max_length=1024)


class CompleteIn(BaseModel):
    parts: list[PartIn] = Field(default_factory=list, max_length=10_000)


class CompletedOut(BaseModel):
    location: str = Field(description="the video's address in this API")
    key: str
    videoId: uuid.UUID
    video: VideoOut


def _direct(services: ServicesDep) -> DirectUploads:
    return DirectUploads(services.uploads)


@router.post("/s3/multipart", status_code=201, response_model=DirectCreated)
async def create_multipart_upload(
    body: DirectCreate, user: CurrentUser, services: ServicesDep
) -> DirectCreated:
    """Create a direct upload for a practice session (the checks of `upload/init`): the service
    starts the S3 multipart upload under a key of its own."""
    metadata = body.metadata
    created = await _direct(services).create(
        user,
        DirectRequest(
            session_id=str(metadata.session_id),
            filename=body.filename,
            content_type=body.type or None,
            file_size=metadata.file_size,
            duration_seconds=metadata.duration_seconds,
        ),
    )
    return DirectCreated(
        uploadId=created.video.upload_id,
        key=created.key,
        videoId=created.video.id,
        partSize=created.part_size,
        partCount=created.part_count,
        expiresAt=created.video.upload_expires_at,
    )


@router.get("/s3/multipart/{upload_id}/{part_number}", response_model=SignedPartOut)
async def sign_part(
    upload_id: UploadId,
    part_number: Annotated[int, Path(description="1 to partCount")],
    key: Key,
    user: CurrentUser,
    services: ServicesDep,
) -> SignedPartOut:
    """A presigned URL to PUT one part to S3; it takes exactly the part's `size` bytes."""
    signed = await _direct(services).sign_part(user, upload_id, key, part_number)
    return SignedPartOut(
        url=signed.url, expires=signed.expires_seconds, partNumber=signed.number, size=signed.size
    )


@router.get("/s3/multipart/{upload_id}", response_model=list[PartOut])
async def list_parts(
    upload_id: UploadId, key: Key, user: CurrentUser, services: ServicesDep
) -> list[PartOut]:
    """The parts S3 already holds: a client that was interrupted sends the others."""
    parts = await _direct(services).parts(user, upload_id, key)
    return [PartOut(PartNumber=part.number, Size=part.size, ETag=part.etag) for part in parts]


@router.post("/s3/multipart/{upload_id}/complete", response_model=CompletedOut)
async def complete_multipart_upload(
    upload_id: UploadId,
    key: Key,
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    body: Annotated[CompleteIn | None, Body()] = None,
) -> CompletedOut:
    """Join the parts S3 holds (their total must be the declared size) and probe the video,
    as `upload/complete` does: 422 for what is not an acceptable video. Repeatable."""
    claimed = [ClaimedPart(part.PartNumber, part.ETag) for part in (body or CompleteIn()).parts]
    video = await _direct(services).complete(user, upload_id, key, claimed)
    headers = RequestHeaders(request.scope["headers"])
    base = base_url(services.settings, headers, request.url.scheme)
    return CompletedOut(
        location=f"{base}{VIDEOS_PATH}/{video.id}",
        key=key,
        videoId=video.id,
        video=VideoOut.of(video),
    )


@router.delete("/s3/multipart/{upload_id}")
async def abort_multipart_upload(
    upload_id: UploadId, key: Key, user: CurrentUser, services: ServicesDep
) -> dict[str, str]:
    """Abort the upload: the multipart upload and its parts are gone, and so is the upload.
    (`{}` rather than 204: Uppy reads a JSON body from every answer.)"""
    await _direct(services).abort(user, upload_id, key)
    return {}


@router.get("/s3/params", status_code=400, responses={400: ERROR_RESPONSES[400]})
async def single_request_upload(user: CurrentUser) -> Response:
    """Not offered: a single PUT would leave the service no moment to check and probe the file.
    Uppy asks for this for files it does not split; give it `shouldUseMultipart: true`."""
    raise ServiceError(ERR_MULTIPART_REQUIRED)
