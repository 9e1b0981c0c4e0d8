"""The OpenAPI document: FastAPI's own, plus the bearer scheme every API operation requires.

Tokens are checked by the authenticator, which reads the `Authorization` header itself and
answers with the service's own 401, so no FastAPI security dependency runs per request. The
scheme is only declared here, once for every `/api/` operation (REST and tus alike), so that
`/docs` can send a token ("Authorize") and generated clients know to.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

BEARER_SCHEME = "bearerAuth"
API_PREFIX = "/api/"


def declare_bearer_authentication(app: FastAPI) -> None:
    """Make `app.openapi()` add the bearer scheme, required by every `/api/` operation."""
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
        return document

    app.openapi = openapi  # type: ignore[method-assign]
