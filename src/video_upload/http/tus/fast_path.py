"""tus HEAD and PATCH dispatched without FastAPI's router, as the innermost middleware.

These two carry a resumable upload: a client sends one PATCH per chunk and a HEAD after every
interruption, so they are by far the most frequent requests. FastAPI's route matching, scope
bookkeeping and dependency solving cost them a noticeable share of the service's CPU per chunk
for nothing these handlers use: they take the raw request and turn every `ServiceError` into a
response themselves. So `TusFastPath`, a plain ASGI middleware added innermost, hands them to
their handlers after every other middleware (errors, CORS, method override, the drain) has run.
The routes stay registered with FastAPI for the OpenAPI document; every other request, and these
methods on any other path, go through FastAPI's router as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from video_upload.http.tus import routes

PREFIX = routes.TUS_PATH + "/"
Handler = Callable[[Request, str], Awaitable[Response]]
HANDLERS: dict[str, Handler] = {"PATCH": routes.patch, "HEAD": routes.head}


def tus_target(scope: Scope) -> tuple[Handler, str] | None:
    """The handler and upload id of a tus HEAD or PATCH on an upload, else None."""
    if scope["type"] != "http":
        return None
    handler = HANDLERS.get(scope["method"])
    path: str = scope["path"]
    if handler is None or not path.startswith(PREFIX):
        return None
    upload_id = path[len(PREFIX) :]
    if not upload_id or "/" in upload_id:
        return None
    return handler, upload_id


class TusFastPath:
    """The innermost middleware: tus HEAD and PATCH skip FastAPI's router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = tus_target(scope)
        if target is None:
            await self.app(scope, receive, send)
            return
        handler, upload_id = target
        response = await handler(Request(scope, receive), upload_id)
        await response(scope, receive, send)
