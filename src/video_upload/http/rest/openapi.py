"""The OpenAPI document: FastAPI's own, plus the bearer scheme every API operation requires.

Tokens are checked by the authenticator, which reads the `Authorization` header itself and
answers with the service's own 401, so no FastAPI security dependency runs per request. The
scheme is only declared here, once for every `/api/` operation (REST and tus alike), so that
`/docs` can send a token ("Authorize") and generated clients know to.

The bounds of `upload/init` that come from the settings (the largest file, the longest video)
are written into the document too, once the app has its settings, so that schema-driven
clients and fuzzers expect what the service enforces.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from video_upload.config import Settings
from video_upload.http.services import Services

BEARER_SCHEME = "bearerAuth"
API_PREFIX = "/api/"


def declare_bearer_authentication(app: FastAPI) -> None:
    """Make `app.openapi()` add the bearer scheme, required by every `/api/` operation, and the
    configured limits (`document_limits`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI builds it once and keeps it
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        if BEARER_SCHEME not in schemes:
            schemes[BEARER_SCHEME] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            for path, operations in document["paths"].items():
                if path.startswith(API_PREFIX):
                    for operation in operations.values():
                        operation["security"] = [{BEARER_SCHEME: []}]
        services = getattr(app.state, "services", None)
        if isinstance(services, Services):
            document_limits(document, services.settings)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def document_limits(document: dict[str, Any], settings: Settings) -> None:
    """State the configured maxima of `upload/init`'s `file_size` and `duration_seconds`."""
    schema = document.get("components", {}).get("schemas", {}).get("UploadInit")
    if schema is None:
        return
    properties = schema["properties"]
    properties["file_size"]["maximum"] = settings.max_upload_size
    properties["duration_seconds"]["maximum"] = settings.max_duration_seconds
