"""The direct-upload tests' client of the presigned-part routes (as Uppy calls them), the live
servers and fixtures they run on, and the checks of what S3 holds for an upload."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import User, make_settings, new_session, new_user
from tests.support.live import LiveServer, start_server
from tests.support.s3server import leftover_objects, pending_multipart_uploads

MIB = 1024 * 1024
BASE = "/api/v1/videos/direct/s3"
PART = 5 * MIB  # the default S3_PART_SIZE


def start_direct_server(
    request: pytest.FixtureRequest, backend: str, **overrides: Any
) -> LiveServer:
    """A live server of its own on `backend` (one with S3 for direct uploads)."""
    base = request.getfixturevalue("tmp_path_factory").mktemp(f"direct-{backend}")
    settings = make_settings(request, base, backend, **overrides)
    return start_server(f"direct-{backend}", settings)


@pytest.fixture(scope="session", params=["sqlite-s3", "postgres-s3"])
def direct_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Probing off: the transport is tested with random bytes, many MiB of them."""
    live = start_direct_server(request, request.param)
    yield live
    live.stop()


class Direct:
    """A client of the direct-upload routes, as Uppy's `@uppy/aws-s3` calls them."""

    def __init__(self, server: LiveServer, user: User | None = None) -> None:
        self.server = server
        self.user = user or new_user(server)
        self.http = httpx.Client(base_url=server.base_url, timeout=60, headers=self.user.bearer)

    def close(self) -> None:
        self.http.close()

    def session(self) -> str:
        return new_session(self.http, self.user, "direct")

    def create(
        self,
        size: int,
        *,
        session_id: str | None = None,
        filename: str = "take.mp4",
        content_type: str = "video/mp4",
        duration: float = 3,
    ) -> httpx.Response:
        metadata = {
            "session_id": session_id or self.session(),
            "file_size": str(size),  # Uppy sends every metadata value as a string
            "duration_seconds": str(duration),
            "name": filename,
            "type": content_type,
        }
        return self.http.post(
            f"{BASE}/multipart",
            json={"filename": filename, "type": content_type, "metadata": metadata},
        )

    def start(self, size: int, **options: Any) -> dict[str, Any]:
        response = self.create(size, **options)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def sign(self, upload: dict[str, Any], number: int) -> httpx.Response:
        return self.http.get(
            f"{BASE}/multipart/{upload['uploadId']}/{number}", params={"key": upload["key"]}
        )

    def put_part(self, upload: dict[str, Any], number: int, data: bytes) -> str:
        signed = self.sign(upload, number)
        assert signed.status_code == 200, signed.text
        assert signed.json()["size"] == len(data)
        response = httpx.put(signed.json()["url"], content=data, timeout=60)
        assert response.status_code == 200, response.text
        return response.headers["etag"]

    def parts(self, upload: dict[str, Any]) -> httpx.Response:
        return self.http.get(
            f"{BASE}/multipart/{upload['uploadId']}", params={"key": upload["key"]}
        )

    def complete(self, upload: dict[str, Any], parts: list[dict[str, Any]]) -> httpx.Response:
        return self.http.post(
            f"{BASE}/multipart/{upload['uploadId']}/complete",
            params={"key": upload["key"]},
            json={"parts": parts},
        )

    def abort(self, upload: dict[str, Any]) -> httpx.Response:
        return self.http.delete(
            f"{BASE}/multipart/{upload['uploadId']}", params={"key": upload["key"]}
        )


@pytest.fixture
def direct(direct_server: LiveServer) -> Iterator[Direct]:
    client = Direct(direct_server)
    yield client
    client.close()


def pieces(data: bytes, part_size: int = PART) -> list[bytes]:
    return [data[start : start + part_size] for start in range(0, len(data), part_size)]


def held(server: LiveServer, upload: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The objects and the pending multipart uploads S3 holds under the upload's key."""
    endpoint, bucket = server.settings.s3_endpoint_url, server.settings.s3_bucket_name
    return (
        leftover_objects(endpoint, bucket, upload["key"]),
        pending_multipart_uploads(endpoint, bucket, upload["key"]),
    )
