"""Practice sessions: create one, read one, list its videos."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body

from video_upload.http.rest.deps import CatalogDep, CurrentUser
from video_upload.http.rest.schemas import ERROR_RESPONSES, SessionCreate, SessionOut, VideoOut

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"], responses=ERROR_RESPONSES)


@router.post("", status_code=201, response_model=SessionOut)
async def create_session(
    user: CurrentUser, catalog: CatalogDep, body: Annotated[SessionCreate | None, Body()] = None
) -> SessionOut:
    session = await catalog.create_session(user, (body or SessionCreate()).name)
    return SessionOut.of(session)


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(session_id: uuid.UUID, user: CurrentUser, catalog: CatalogDep) -> SessionOut:
    return SessionOut.of(await catalog.session(user, session_id))


@router.get("/{session_id}/videos", response_model=list[VideoOut])
async def list_session_videos(
    session_id: uuid.UUID, user: CurrentUser, catalog: CatalogDep
) -> list[VideoOut]:
    return [VideoOut.of(video) for video in await catalog.session_videos(user, session_id)]
