"""The cleanup tests' shared helpers: run a cleanup on a live server, write to an upload, and see
what the store still holds for a key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.tus import patch_headers
from video_upload.lifecycle.cleanup import CleanupReport, VideoService


def run_cleanup(server: LiveServer, **options: Any) -> CleanupReport:
    return server.run(VideoService(server.services, **options).cleanup())


def upload_id_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def storage_of(server: LiveServer, key: str) -> list[str]:
    """What the store still holds for `key`: files, S3 objects or pending multipart uploads."""
    settings = server.settings
    if settings.storage_backend == "s3":
        try:
            from tests.support.s3server import leftover_objects, pending_multipart_uploads
        except ImportError:  # pragma: no cover - S3 support not installed
            pytest.skip("S3 test helpers are not available")
        endpoint, bucket = settings.s3_endpoint_url, settings.s3_bucket_name
        prefix = settings.s3_key_prefix + key
        return leftover_objects(endpoint, bucket, prefix) + pending_multipart_uploads(
            endpoint, bucket, prefix
        )
    path = settings.local_storage_path / key
    sidecars = settings.local_storage_path / f"{key}.sidecar"
    return [str(found) for found in (path, sidecars) if found.exists()]


def write(client: httpx.Client, user: User, url: str, offset: int, data: bytes) -> None:
    response = client.patch(url, headers=patch_headers(user.headers, offset), content=data)
    assert response.status_code == 204, response.text
