"""Practice sessions: create one, list them, read one, list its videos (a page at a time)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response

from video_upload.http.rest.deps import CatalogDep, CurrentUser
from video_upload.http.rest.schemas import ERROR_RESPONSES, SessionCreate, SessionOut, VideoOut

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"], responses=ERROR_RESPONSES)

DEFAULT_PAGE = 100
MAX_PAGE = 500
NEXT_CURSOR = "X-Next-Cursor"
# A cursor is opaque to clients: today the position in the session's list, oldest first.
CURSOR_PATTERN = r"^[0-9]{1,9}$"


@router.post("", status_code=201, response_model=SessionOut)
async def create_session(
    user: CurrentUser, catalog: CatalogDep, body: Annotated[SessionCreate | None, Body()] = None
) -> SessionOut:
    session = await catalog.create_session(user, (body or SessionCreate()).name)
    return SessionOut.of(session)


def _paged(request: Request, response: Response, limit: int, start: int, more: bool) -> None:
    """Point to the next page when there is one."""
    if more:
        following = start + limit
        response.headers[NEXT_CURSOR] = str(following)
        link = request.url.include_query_params(limit=limit, cursor=str(following))
        response.headers["Link"] = f'<{link.path}?{link.query}>; rel="next"'


PAGE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": f"Up to `limit` items, oldest first. When more follow, the "
        f"`{NEXT_CURSOR}` header gives the `cursor` of the next page, and `Link` "
        '(rel="next") its URL.',
        "headers": {
            NEXT_CURSOR: {"schema": {"type": "string"}, "description": "the next page"},
            "Link": {"schema": {"type": "string"}, "description": 'rel="next"'},
        },
    }
}


@router.get("", response_model=list[SessionOut], responses=PAGE_RESPONSES)
async def list_sessions(
    request: Request,
    response: Response,
    user: CurrentUser,
    catalog: CatalogDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
) -> list[SessionOut]:
    """A page of your practice sessions."""
    start = int(cursor) if cursor else 0  # (the pattern lets only digits through)
    sessions = await catalog.sessions(user, offset=start, limit=limit + 1)
    _paged(request, response, limit, start, more=len(sessions) > limit)
    return [SessionOut.of(session) for session in sessions[:limit]]


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(session_id: uuid.UUID, user: CurrentUser, catalog: CatalogDep) -> SessionOut:
    return SessionOut.of(await catalog.session(user, session_id))


@router.get("/{session_id}/videos", response_model=list[VideoOut], responses=PAGE_RESPONSES)
async def list_session_videos(
    session_id: uuid.UUID,
    request: Request,
    response: Response,
    user: CurrentUser,
    catalog: CatalogDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
) -> list[VideoOut]:
    """A page of the session's videos."""
    start = int(cursor) if cursor else 0  # (the pattern lets only digits through)
    videos = await catalog.session_videos(user, session_id, offset=start, limit=limit + 1)
    _paged(request, response, limit, start, more=len(videos) > limit)
    return [VideoOut.of(video) for video in videos[:limit]]
