"""HEAD and PATCH on an upload, dispatched without FastAPI's router.

These two carry a resumable upload: a client sends one PATCH per chunk and a HEAD after every
interruption, so they are by far the most frequent requests. FastAPI's route matching, scope
bookkeeping, dependency solving and exception middleware cost them about a fifth of the
service's CPU per chunk (measured with py-spy, see the README's benchmarks), for nothing these
handlers use: they take the raw request and turn every `ServiceError` into a response
themselves. So this middleware, the innermost one (inside CORS, the drain and method override),
sends them straight to the handlers in `tus.routes`. The routes stay registered with FastAPI for
the OpenAPI document; every other request, and these methods on any other path, go through
FastAPI as before. An unexpected exception still reaches the app's 500 handler.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from video_upload.tus import routes

PREFIX = routes.TUS_PATH + "/"
HANDLERS = {"PATCH": routes.patch, "HEAD": routes.head}


class TusFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = HANDLERS.get(scope["method"])
            path: str = scope["path"]
            if handler is not None and path.startswith(PREFIX):
                upload_id = path[len(PREFIX) :]
                if upload_id and "/" not in upload_id:
                    response = await handler(Request(scope, receive), upload_id)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
