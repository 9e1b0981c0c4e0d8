"""The tus 1.0.0 endpoints: OPTIONS, POST (creation), HEAD, PATCH and DELETE.

Each handler parses headers, asks the upload service, and turns the result (or the service's
error) into a tus response with plain-text bodies. Nothing here knows how bytes are stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response

from video_upload.checksums import ALGORITHMS
from video_upload.db.models import Video
from video_upload.errors import ERR_WRONG_CONTENT_TYPE, ErrorKind, ServiceError
from video_upload.tus import constants as tus
from video_upload.tus import openapi
from video_upload.tus.headers import (
    http_date,
    parse_checksum,
    parse_concat,
    parse_length,
    parse_metadata,
    parse_offset,
)
from video_upload.uploads.service import Chunk, NewUpload
from video_upload.uploads.streams import ClientGone
from video_upload.web import Services, services_of

log = logging.getLogger(__name__)

TUS_PATH = "/api/v1/videos/tus"

router = APIRouter(prefix=TUS_PATH, tags=["tus"])


# -- responses -----------------------------------------------------------------------------


def tus_response(status: int, headers: dict[str, str] | None = None, body: str = "") -> Response:
    all_headers = {tus.TUS_RESUMABLE: tus.TUS_VERSION, **(headers or {})}
    media_type = "text/plain; charset=utf-8" if body else None
    return Response(content=body, status_code=status, headers=all_headers, media_type=media_type)


def error_response(kind: ErrorKind) -> Response:
    headers = dict(kind.headers)
    if kind.status == 412:
        headers[tus.TUS_VERSION_HEADER] = tus.TUS_VERSION
    return tus_response(kind.status, headers, kind.message + "\n")


def extensions(services: Services) -> str:
    names = list(tus.CORE_EXTENSIONS)
    if services.can_concatenate:
        names.extend(tus.CONCAT_EXTENSIONS)
    return ",".join(names)


def location(request: Request, services: Services, upload_id: str) -> str:
    path = f"{TUS_PATH}/{upload_id}"
    if not services.settings.trust_proxy_headers:
        return path
    proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = request.headers.get("x-forwarded-host", request.headers.get("host", "")).split(",")[0]
    return f"{proto}://{host.strip()}{path}" if host.strip() else path


def upload_headers(video: Video) -> dict[str, str]:
    headers: dict[str, str] = {"Cache-Control": "no-store"}
    final_pending = video.concat == "final" and not video.upload_completed
    if not final_pending:
        headers[tus.UPLOAD_OFFSET] = str(video.upload_offset)
    if video.upload_length is not None:
        headers[tus.UPLOAD_LENGTH] = str(video.upload_length)
    elif video.concat != "final":
        headers[tus.UPLOAD_DEFER_LENGTH] = "1"
    if video.tus_metadata:
        headers[tus.UPLOAD_METADATA] = video.tus_metadata
    if video.upload_expires_at is not None and not video.upload_completed:
        headers[tus.UPLOAD_EXPIRES] = http_date(video.upload_expires_at)
    if video.concat == "partial":
        headers[tus.UPLOAD_CONCAT] = "partial"
    elif video.concat == "final":
        parts = " ".join(f"{TUS_PATH}/{part}" for part in video.concat_parts or [])
        headers[tus.UPLOAD_CONCAT] = f"final;{parts}"
    return headers


# -- request helpers -----------------------------------------------------------------------


def require_version(request: Request) -> None:
    version = request.headers.get(tus.TUS_RESUMABLE)
    if version != tus.TUS_VERSION:
        raise ServiceError(
            ErrorKind("unsupported_version", 412, f"Tus-Resumable must be {tus.TUS_VERSION}")
        )


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives, straight from the ASGI messages (one generator less
    than Starlette's `Request.stream`, per message of every chunk)."""
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body: bytes = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


def has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in {"", "0"}
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


def require_offset_content_type(request: Request) -> None:
    if request.headers.get("content-type", "").split(";")[0].strip() != tus.OFFSET_CONTENT_TYPE:
        raise ServiceError(ERR_WRONG_CONTENT_TYPE)


def chunk_from(request: Request, offset: int, declared_length: int | None = None) -> Chunk:
    require_offset_content_type(request)
    return Chunk(
        offset=offset,
        body=body_stream(request),
        content_length=content_length(request),
        declared_length=declared_length,
        checksum=parse_checksum(request.headers.get(tus.UPLOAD_CHECKSUM)),
    )


async def authenticated(request: Request) -> tuple[Services, str]:
    services = services_of(request)
    require_version(request)
    user_id = services.authenticator.user_from_header(request.headers.get("authorization"))
    return services, user_id


# -- handlers ------------------------------------------------------------------------------


@router.options("", include_in_schema=False)
@router.options("/{upload_id}", include_in_schema=False)
async def options(request: Request) -> Response:
    services = services_of(request)
    headers = {
        tus.TUS_VERSION_HEADER: tus.TUS_VERSION,
        tus.TUS_EXTENSION: extensions(services),
        tus.TUS_MAX_SIZE: str(services.settings.max_upload_size),
        tus.TUS_CHECKSUM_ALGORITHM: ",".join(ALGORITHMS),
    }
    return Response(status_code=200, headers=headers)


@router.api_route("", methods=["GET", "PUT", "PATCH", "DELETE", "HEAD"], include_in_schema=False)
async def not_allowed(request: Request) -> Response:
    """Without this, GET /api/v1/videos/tus would reach GET /api/v1/videos/{video_id}."""
    return tus_response(405, {"Allow": "POST, OPTIONS"}, "only POST (creation) and OPTIONS\n")


@router.post("", summary="tus creation", status_code=201, response_class=Response, **openapi.CREATE)
async def create(request: Request) -> Response:
    try:
        services, user_id = await authenticated(request)
        service = services.uploads
        raw_metadata = request.headers.get(tus.UPLOAD_METADATA)
        metadata = parse_metadata(raw_metadata)
        concat = parse_concat(request.headers.get(tus.UPLOAD_CONCAT), TUS_PATH)
        if concat is not None and not concat.partial:
            if not services.can_concatenate:
                raise ServiceError(ErrorKind("unsupported", 400, "concatenation is not supported"))
            if request.headers.get(tus.UPLOAD_LENGTH) is not None:
                raise ServiceError(
                    ErrorKind("invalid_concat", 400, "a final upload takes no Upload-Length")
                )
            video = await service.create_final(
                user_id, list(concat.final_parts), raw_metadata, metadata
            )
            return tus_response(201, {"Location": location(request, services, video.upload_id)})
        length = declared_creation_length(request)
        if has_body(request):
            require_offset_content_type(request)  # before anything is created
        video = await service.create(
            user_id,
            NewUpload(
                length=length,
                raw_metadata=raw_metadata,
                metadata=metadata,
                partial=concat is not None and concat.partial,
            ),
        )
        return await respond_created(request, services, user_id, video)
    except ServiceError as error:
        return error_response(error.kind)


def declared_creation_length(request: Request) -> int | None:
    length = parse_length(request.headers.get(tus.UPLOAD_LENGTH))
    deferred = request.headers.get(tus.UPLOAD_DEFER_LENGTH)
    if length is None and deferred is None:
        raise ServiceError(
            ErrorKind("missing_length", 400, "Upload-Length or Upload-Defer-Length is required")
        )
    if deferred is not None and (deferred.strip() != "1" or length is not None):
        raise ServiceError(
            ErrorKind(
                "invalid_defer_length", 400, "Upload-Defer-Length must be 1, without a length"
            )
        )
    return length


async def respond_created(
    request: Request, services: Services, user_id: str, video: Video
) -> Response:
    """201 for a new upload, after writing a creation-with-upload body if there is one."""
    headers = {"Location": location(request, services, video.upload_id)}
    if has_body(request):
        outcome = await services.uploads.write(user_id, video.upload_id, chunk_from(request, 0))
        video = outcome.video
        headers[tus.UPLOAD_OFFSET] = str(video.upload_offset)
    if video.upload_expires_at is not None and not video.upload_completed:
        headers[tus.UPLOAD_EXPIRES] = http_date(video.upload_expires_at)
    return tus_response(201, headers)


@router.post(
    "/{upload_id}",
    summary="tus creation of a REST-initialised upload",
    status_code=201,
    response_class=Response,
    **openapi.CREATE_INITIALISED,
)
async def create_initialised(request: Request, upload_id: str) -> Response:
    """tus-js-client with `endpoint: upload_url` POSTs here: adopt the initialised upload."""
    try:
        services, user_id = await authenticated(request)
        length = parse_length(request.headers.get(tus.UPLOAD_LENGTH))
        video = await services.uploads.claim_initialised(user_id, upload_id, length)
        if has_body(request):
            require_offset_content_type(request)
        return await respond_created(request, services, user_id, video)
    except ServiceError as error:
        return error_response(error.kind)


@router.head("/{upload_id}", summary="tus upload offset", response_class=Response, **openapi.HEAD)
async def head(request: Request, upload_id: str) -> Response:
    try:
        services, user_id = await authenticated(request)
        video = await services.uploads.settled(user_id, upload_id)
        video = await services.uploads.refresh_final(video)
        return tus_response(200, upload_headers(video))
    except ServiceError as error:
        response = error_response(error.kind)
        response.headers["Cache-Control"] = "no-store"
        return response


@router.patch(
    "/{upload_id}",
    summary="tus chunk upload",
    status_code=204,
    response_class=Response,
    **openapi.PATCH,
)
async def patch(request: Request, upload_id: str) -> Response:
    try:
        services, user_id = await authenticated(request)
        declared = parse_length(request.headers.get(tus.UPLOAD_LENGTH))
        offset = parse_offset(request.headers.get(tus.UPLOAD_OFFSET))
        chunk = chunk_from(request, offset, declared)
        outcome = await services.uploads.write(user_id, upload_id, chunk)
        video = outcome.video
        headers: dict[str, Any] = {tus.UPLOAD_OFFSET: str(video.upload_offset)}
        if video.upload_expires_at is not None and not video.upload_completed:
            headers[tus.UPLOAD_EXPIRES] = http_date(video.upload_expires_at)
        return tus_response(204, headers)
    except ServiceError as error:
        return error_response(error.kind)


@router.delete(
    "/{upload_id}",
    summary="tus termination",
    status_code=204,
    response_class=Response,
    **openapi.DELETE,
)
async def delete(request: Request, upload_id: str) -> Response:
    try:
        services, user_id = await authenticated(request)
        await services.uploads.terminate(user_id, upload_id)
        return tus_response(204)
    except ServiceError as error:
        return error_response(error.kind)
