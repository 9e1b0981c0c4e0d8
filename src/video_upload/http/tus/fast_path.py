"""HEAD and PATCH on an upload, dispatched without FastAPI's router, and mostly without any
middleware at all.

These two carry a resumable upload: a client sends one PATCH per chunk and a HEAD after every
interruption, so they are by far the most frequent requests. FastAPI's route matching, scope
bookkeeping, dependency solving and exception middleware cost them about a fifth of the
service's CPU per chunk (measured with py-spy, see the README's benchmarks), for nothing these
handlers use: they take the raw request and turn every `ServiceError` into a response
themselves. The routes stay registered with FastAPI for the OpenAPI document. Two ways in:

- `TusShortcutApp`, the application class itself, hands them to their handlers before any
  middleware runs, when none of the middleware would do anything for them: no `Origin` header
  (CORS), the process is not draining (the drain's 503), and FastAPI records no OpenTelemetry
  (decided once at start-up, `enable_shortcut`). Checking those costs a few microseconds; the
  layers they stand for cost a PATCH about 100,000 instructions (`bench.instructions`). An
  unexpected exception gets the app's 500 answer, as the error middleware would give it.
- `TusFastPath`, the innermost middleware, takes the rest (a browser's requests, with their
  `Origin`; every request while telemetry is on) after CORS, the drain and method override.

Every other request, and these methods on any other path, go through FastAPI as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Response
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from video_upload.http.drain import Drain
from video_upload.http.rest.errors import unexpected_error_response
from video_upload.http.tus import routes

log = logging.getLogger(__name__)

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


class TusShortcutApp(FastAPI):
    """The FastAPI application, with tus HEAD and PATCH taken ahead of every middleware when
    none of it applies (see the module's docstring)."""

    tus_drain: Drain | None = None
    tus_shortcut = False  # until `enable_shortcut` has run, at start-up

    def enable_shortcut(self, drain: Drain) -> bool:
        """Take the shortcut from now on unless FastAPI records OpenTelemetry for requests
        (a provider is configured, now that the lifespan's set-up has run); whether it will.
        A FastAPI that no longer exposes that decision gets no shortcut."""
        telemetry = getattr(self, "_native_telemetry", None)
        enabled = getattr(telemetry, "enabled", None)
        self.tus_drain = drain
        self.tus_shortcut = callable(enabled) and not enabled()
        return self.tus_shortcut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.tus_shortcut:
            target = tus_target(scope)
            if target is not None and self._nothing_in_the_way(scope):
                handler, upload_id = target
                scope["app"] = self
                await self._serve(handler, upload_id, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _nothing_in_the_way(self, scope: Scope) -> bool:
        if self.tus_drain is not None and self.tus_drain.draining:
            return False
        return all(name != b"origin" for name, _ in scope["headers"])

    async def _serve(
        self, handler: Handler, upload_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        try:
            response = await handler(Request(scope, receive), upload_id)
        except Exception as error:
            # what Starlette's error middleware does with the app's handler: answer 500 (a
            # handler sends nothing itself, so no answer has started) and re-raise, for the
            # server to log it and close the connection
            log.exception("unhandled error", exc_info=error)
            await unexpected_error_response()(scope, receive, send)
            raise
        await response(scope, receive, send)
