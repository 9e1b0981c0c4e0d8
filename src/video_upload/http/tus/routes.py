"""The tus 1.0.0 endpoints: OPTIONS, POST (creation), HEAD, PATCH and DELETE.

Each handler parses headers, asks the upload service, and turns the result (or the service's
error) into a tus response with plain-text bodies. Nothing here knows how bytes are stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response

from video_upload.domain.checksums import ALGORITHMS
from video_upload.domain.errors import ERR_WRONG_CONTENT_TYPE, ErrorKind, ServiceError
from video_upload.domain.records import Video
from video_upload.http.services import Services, services_of
from video_upload.http.tus import constants as tus
from video_upload.http.tus import openapi
from video_upload.http.tus.bounds import check_upload_id, usable_user_id
from video_upload.http.tus.headers import (
    RequestHeaders,
    http_date,
    parse_checksum,
    parse_concat,
    parse_length,
    parse_metadata,
    parse_offset,
)
from video_upload.http.tus.public_url import base_url
from video_upload.lifecycle.service import Chunk, NewUpload
from video_upload.lifecycle.streams import ClientGone

log = logging.getLogger(__name__)

TUS_PATH = "/api/v1/videos/tus"

router = APIRouter(prefix=TUS_PATH, tags=["tus"])


# -- responses -----------------------------------------------------------------------------


def tus_response(status: int, headers: dict[str, str] | None = None, body: str = "") -> Response:
    all_headers = {tus.TUS_RESUMABLE: tus.TUS_VERSION, **(headers or {})}
    media_type = "text/plain; charset=utf-8" if body else None
    return Response(content=body, status_code=status, headers=all_headers, media_type=media_type)


def error_response(kind: ErrorKind, extra: dict[str, str] | None = None) -> Response:
    headers = {**kind.headers, **(extra or {})}
    if kind.status == 412:
        headers[tus.TUS_VERSION_HEADER] = tus.TUS_VERSION
    return tus_response(kind.status, headers, kind.message + "\n")


def extensions(services: Services) -> str:
    names = list(tus.CORE_EXTENSIONS)
    if services.can_concatenate:
        names.extend(tus.CONCAT_EXTENSIONS)
    return ",".join(names)


def uploads_url(request: Request, services: Services, headers: RequestHeaders | None = None) -> str:
    """The absolute URL of the tus endpoint, `…/api/v1/videos/tus` (see `public_url`); 400 for a
    request whose host cannot be part of a URL. Taken before anything is created."""
    headers = headers or RequestHeaders(request.scope["headers"])
    return base_url(services.settings, headers, request.url.scheme) + TUS_PATH


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


def require_version(headers: RequestHeaders) -> None:
    version = headers.get(tus.TUS_RESUMABLE)
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


def has_body(headers: RequestHeaders) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in {"", "0"}
    return "chunked" in (headers.get("transfer-encoding") or "").lower()


def content_length(headers: RequestHeaders) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


def require_offset_content_type(headers: RequestHeaders) -> None:
    if (headers.get("content-type") or "").split(";")[0].strip() != tus.OFFSET_CONTENT_TYPE:
        raise ServiceError(ERR_WRONG_CONTENT_TYPE)


def chunk_from(
    request: Request, headers: RequestHeaders, offset: int, declared_length: int | None = None
) -> Chunk:
    require_offset_content_type(headers)
    return Chunk(
        offset=offset,
        body=body_stream(request),
        content_length=content_length(headers),
        declared_length=declared_length,
        checksum=parse_checksum(headers.get(tus.UPLOAD_CHECKSUM)),
    )


def authenticated(request: Request) -> tuple[Services, RequestHeaders, str]:
    """The services, the request's headers and the caller's user id (or a 401/412 error)."""
    services = services_of(request)
    headers = RequestHeaders(request.scope["headers"])
    require_version(headers)
    user_id = services.authenticator.user_from_header(headers.get("authorization"))
    return services, headers, usable_user_id(user_id)


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
        services, headers, user_id = authenticated(request)
        endpoint = uploads_url(request, services, headers)
        service = services.uploads
        raw_metadata = headers.get(tus.UPLOAD_METADATA)
        metadata = parse_metadata(raw_metadata)
        concat = parse_concat(headers.get(tus.UPLOAD_CONCAT), TUS_PATH)
        if concat is not None and not concat.partial:
            if not services.can_concatenate:
                raise ServiceError(ErrorKind("unsupported", 400, "concatenation is not supported"))
            if headers.get(tus.UPLOAD_LENGTH) is not None:
                raise ServiceError(
                    ErrorKind("invalid_concat", 400, "a final upload takes no Upload-Length")
                )
            video = await service.create_final(
                user_id, list(concat.final_parts), raw_metadata, metadata
            )
            return tus_response(201, {"Location": f"{endpoint}/{video.upload_id}"})
        length = declared_creation_length(headers)
        if has_body(headers):
            require_offset_content_type(headers)  # before anything is created
        video = await service.create(
            user_id,
            NewUpload(
                length=length,
                raw_metadata=raw_metadata,
                metadata=metadata,
                partial=concat is not None and concat.partial,
            ),
        )
        return await respond_created(request, headers, services, user_id, video, endpoint)
    except ServiceError as error:
        return error_response(error.kind)


def declared_creation_length(headers: RequestHeaders) -> int | None:
    length = parse_length(headers.get(tus.UPLOAD_LENGTH))
    deferred = headers.get(tus.UPLOAD_DEFER_LENGTH)
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
    request: Request,
    headers: RequestHeaders,
    services: Services,
    user_id: str,
    video: Video,
    endpoint: str,
    *,
    claimed: bool = False,
) -> Response:
    """201 for a new upload, after writing a creation-with-upload body if there is one.

    A body the upload refuses (past its length, a checksum mismatch, a store failure) fails the
    whole creation: an upload made by this request is removed again, as the client, answered
    with an error and no `Location`, could never find it. An upload that REST init made
    (`claimed`) stays, and the error names it in `Location` to resume from.
    """
    location = f"{endpoint}/{video.upload_id}"
    answer = {"Location": location}
    if has_body(headers):
        try:
            chunk = chunk_from(request, headers, 0)  # (a malformed Upload-Checksum: 400)
            video = (await services.uploads.write(user_id, video.upload_id, chunk)).video
        except ServiceError as error:
            if claimed:
                return error_response(error.kind, {"Location": location})
            await forget_created(services, user_id, video.upload_id)
            raise
        answer[tus.UPLOAD_OFFSET] = str(video.upload_offset)
    if video.upload_expires_at is not None and not video.upload_completed:
        answer[tus.UPLOAD_EXPIRES] = http_date(video.upload_expires_at)
    return tus_response(201, answer)


async def forget_created(services: Services, user_id: str, upload_id: str) -> None:
    """Remove an upload whose creation failed (best effort: expiry removes what stays)."""
    try:
        await services.uploads.terminate(user_id, upload_id)
    except ServiceError as error:
        log.warning("could not remove the failed creation %s: %s", upload_id, error.kind.code)


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
        services, headers, user_id = authenticated(request)
        check_upload_id(upload_id)
        endpoint = uploads_url(request, services, headers)
        length = parse_length(headers.get(tus.UPLOAD_LENGTH))
        raw_metadata = headers.get(tus.UPLOAD_METADATA)
        parse_metadata(raw_metadata)  # well-formed and bounded, like any creation's
        if has_body(headers):
            require_offset_content_type(headers)
        video = await services.uploads.claim_initialised(user_id, upload_id, length, raw_metadata)
        return await respond_created(
            request, headers, services, user_id, video, endpoint, claimed=True
        )
    except ServiceError as error:
        return error_response(error.kind)


@router.head("/{upload_id}", summary="tus upload offset", response_class=Response, **openapi.HEAD)
async def head(request: Request, upload_id: str) -> Response:
    try:
        services, _, user_id = authenticated(request)
        video = await services.uploads.settled(user_id, check_upload_id(upload_id))
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
        services, headers, user_id = authenticated(request)
        check_upload_id(upload_id)
        declared = parse_length(headers.get(tus.UPLOAD_LENGTH))
        offset = parse_offset(headers.get(tus.UPLOAD_OFFSET))
        chunk = chunk_from(request, headers, offset, declared)
        video = (await services.uploads.write(user_id, upload_id, chunk)).video
        answer: dict[str, Any] = {tus.UPLOAD_OFFSET: str(video.upload_offset)}
        if video.upload_expires_at is not None and not video.upload_completed:
            answer[tus.UPLOAD_EXPIRES] = http_date(video.upload_expires_at)
        return tus_response(204, answer)
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
        services, _, user_id = authenticated(request)
        await services.uploads.terminate(user_id, check_upload_id(upload_id))
        return tus_response(204)
    except ServiceError as error:
        return error_response(error.kind)
