"""FastAPI dependencies: the services and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from video_upload.auth import OPENAPI_BEARER_SCHEME
from video_upload.uploads.catalog import VideoCatalog
from video_upload.uploads.service import UploadService
from video_upload.web import Services, services_of


def _services(request: Request) -> Services:
    return services_of(request)


# Declares the bearer scheme in the OpenAPI document (so /docs can send a token); the token
# itself is checked by the authenticator, with the service's own 401 answer.
_bearer = HTTPBearer(scheme_name=OPENAPI_BEARER_SCHEME, bearerFormat="JWT", auto_error=False)


def _current_user(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> str:
    authenticator = services_of(request).authenticator
    return authenticator.user_from_header(request.headers.get("authorization"))


def _uploads(request: Request) -> UploadService:
    return services_of(request).uploads


def _catalog(request: Request) -> VideoCatalog:
    return VideoCatalog(services_of(request).uploads)


ServicesDep = Annotated[Services, Depends(_services)]
CurrentUser = Annotated[str, Depends(_current_user)]
UploadsDep = Annotated[UploadService, Depends(_uploads)]
CatalogDep = Annotated[VideoCatalog, Depends(_catalog)]
