"""What the service tells its operators about each request: a request id, a log line, metrics.

`Observe` is the outermost middleware. It takes the request's id from `X-Request-ID` (when it
is a short printable token; otherwise it makes one) and echoes it in the answer, opens the
request's log fields (`logs.begin_request`; authentication adds the user, the tus and REST
handlers the upload), counts the request by method and status, and logs one line with its
timing once the answer is sent. Paths are logged, never headers, so no token reaches a log.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from video_upload import logs, metrics

log = logging.getLogger("video_upload.access")

REQUEST_ID = b"x-request-id"
_ACCEPTABLE_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        logs.begin_request(request_id)
        method: str = scope["method"]
        status = 500  # what a failure before the answer's start amounts to
        started = time.perf_counter()

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID, request_id.encode()),
                ]
            await send(message)

        metrics.open_requests.inc()
        try:
            await self.app(scope, receive, answer)
        finally:
            metrics.open_requests.dec()
            metrics.requests.labels(method, str(status)).inc()
            if status >= 400:
                metrics.errors.labels(method, str(status)).inc()
            log.info(
                "%s %s %d",
                method,
                scope["path"],
                status,
                extra={"duration_ms": round((time.perf_counter() - started) * 1000, 2)},
            )


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID and _ACCEPTABLE_ID.fullmatch(value):
            given: str = value.decode()
            return given
    return secrets.token_hex(8)
