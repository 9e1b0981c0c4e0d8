"""The REST upload flow around tus: init, status, complete, abort."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from video_upload.http.rest.deps import CatalogDep, CurrentUser, ServicesDep, UploadsDep
from video_upload.http.rest.schemas import (
    ERROR_RESPONSES,
    UploadComplete,
    UploadInit,
    UploadInitOut,
    UploadStatus,
    VideoOut,
)
from video_upload.http.tus.bounds import UPLOAD_ID_PATTERN
from video_upload.http.tus.routes import uploads_url
from video_upload.lifecycle.service import NewUpload

router = APIRouter(prefix="/api/v1/videos/upload", tags=["uploads"], responses=ERROR_RESPONSES)

UploadId = Annotated[str, Path(pattern=UPLOAD_ID_PATTERN, description="as `upload/init` gave it")]


@router.post("/init", status_code=201, response_model=UploadInitOut)
async def init_upload(
    body: UploadInit,
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    uploads: UploadsDep,
) -> UploadInitOut:
    """Create an upload; `upload_url` is absolute, for any tus client's `endpoint`."""
    settings = services.settings
    endpoint = uploads_url(request, services)  # a bad Host is refused before anything is made
    uploads.check_declared_video(body.file_size, body.duration_seconds)
    video = await uploads.create(
        user,
        NewUpload(
            length=body.file_size,
            metadata={"session_id": str(body.session_id), "filename": body.filename},
            content_type=body.content_type,
            declared_duration_seconds=body.duration_seconds,
            require_video_type=True,
        ),
    )
    return UploadInitOut(
        upload_id=video.upload_id,
        upload_url=f"{endpoint}/{video.upload_id}",
        expires_at=video.upload_expires_at,
        chunk_size=settings.upload_chunk_size,
        video_id=video.id,
    )


@router.get("/{upload_id}/status", response_model=UploadStatus)
async def upload_status(
    upload_id: UploadId, user: CurrentUser, uploads: UploadsDep
) -> UploadStatus:
    video = await uploads.current(user, upload_id)
    return UploadStatus.of(await uploads.refresh_final(video))


@router.post("/complete", response_model=VideoOut)
async def complete_upload(body: UploadComplete, user: CurrentUser, catalog: CatalogDep) -> VideoOut:
    return VideoOut.of(await catalog.complete(user, body.upload_id))


@router.delete("/{upload_id}", status_code=204, response_class=Response)
async def abort_upload(upload_id: UploadId, user: CurrentUser, uploads: UploadsDep) -> Response:
    await uploads.terminate(user, upload_id)
    return Response(status_code=204)
