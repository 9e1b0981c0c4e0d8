"""Opening the configured store."""

from __future__ import annotations

from video_upload.config import Settings
from video_upload.storage.base import UploadStore
from video_upload.storage.local import LocalStore


async def open_store(settings: Settings) -> UploadStore:
    if settings.storage_backend == "s3":
        from video_upload.storage.s3 import S3Store

        return await S3Store.open(settings)
    return LocalStore(settings.local_storage_path, sync=settings.local_storage_fsync)
