"""FastAPI dependencies: the services and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from video_upload.http.services import Services, services_of
from video_upload.http.tus.bounds import usable_user_id
from video_upload.lifecycle.catalog import VideoCatalog
from video_upload.lifecycle.service import UploadService


def _services(request: Request) -> Services:
    return services_of(request)


def _current_user(request: Request) -> str:
    authenticator = services_of(request).authenticator
    return usable_user_id(authenticator.user_from_header(request.headers.get("authorization")))


def _uploads(request: Request) -> UploadService:
    return services_of(request).uploads


def _catalog(request: Request) -> VideoCatalog:
    return VideoCatalog(services_of(request).uploads)


ServicesDep = Annotated[Services, Depends(_services)]
CurrentUser = Annotated[str, Depends(_current_user)]
UploadsDep = Annotated[UploadService, Depends(_uploads)]
CatalogDep = Annotated[VideoCatalog, Depends(_catalog)]
