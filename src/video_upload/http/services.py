"""The objects every request handler needs, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from video_upload.config import Settings
from video_upload.http.auth import Authenticator
from video_upload.lifecycle.service import UploadService
from video_upload.persistence.database import Database
from video_upload.storage.base import ConcatenatingStore, UploadStore


@dataclass
class Services:
    settings: Settings
    database: Database
    store: UploadStore
    authenticator: Authenticator
    uploads: UploadService

    @property
    def can_concatenate(self) -> bool:
        return isinstance(self.store, ConcatenatingStore)


def services_of(connection: HTTPConnection) -> Services:
    services = connection.app.state.services
    assert isinstance(services, Services), "the app factory did not install its services"
    return services
