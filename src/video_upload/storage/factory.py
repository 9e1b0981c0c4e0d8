"""Opening the configured store."""

from __future__ import annotations

from video_upload.config import Settings
from video_upload.storage.base import StagingArea, UploadStore
from video_upload.storage.local import LocalStore


async def open_store(
    settings: Settings, database_staging: StagingArea | None = None
) -> UploadStore:
    """The store `settings` name; `database_staging` is the metadata database's place for the
    S3 store's staged pieces (`storage.s3_staging`), which `S3_STAGING=database` needs."""
    if settings.storage_backend == "s3":
        from video_upload.storage.s3 import S3Store

        return await S3Store.open(settings, database_staging)
    return LocalStore(settings.local_storage_path, sync=settings.local_storage_fsync)
