"""One place that turns failures into REST answers: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from video_upload.domain.errors import ErrorKind, ServiceError

log = logging.getLogger(__name__)


def error_json(kind: ErrorKind) -> JSONResponse:
    error: dict[str, Any] = {"code": kind.code, "message": kind.message}
    if kind.details:
        error["details"] = kind.details
    return JSONResponse({"error": error}, status_code=kind.status, headers=kind.headers)


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_json(exc.kind)


def validation_problems(error: RequestValidationError) -> list[dict[str, str]]:
    """Each invalid field of a request (its path below the body or query) and what is wrong."""
    return [
        {"field": ".".join(str(part) for part in item["loc"][1:]), "problem": item["msg"]}
        for item in error.errors()
    ]


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    kind = ErrorKind(
        "validation_error",
        422,
        "the request is invalid",
        details={"fields": validation_problems(exc)},
    )
    return error_json(kind)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    kind = ErrorKind(code, exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
    return error_json(kind)


def unexpected_error_response(error_id: str) -> JSONResponse:
    """The answer to an exception nothing else handled: a 500 that names the log line."""
    kind = ErrorKind(
        "internal_error",
        500,
        f"internal server error (error id {error_id})",
        details={"error_id": error_id},
    )
    return error_json(kind)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # a bug or a broken deployment (a missing migration, a constraint violated): a retry would
    # fail the same way, so it is a 500, never a 503; the id ties the answer to the log line
    error_id = secrets.token_hex(8)
    log.error(
        "unhandled error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc
    )
    return unexpected_error_response(error_id)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
