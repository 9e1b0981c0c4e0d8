"""A creation-with-upload whose body is refused (past Upload-Length, a checksum mismatch) leaves
no upload the client never learned about; a REST-initialised one stays, named in `Location`."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.rows import orm_session
from tests.support.tus import OCTETS, checksum, metadata

TUS_PATH = "/api/v1/videos/tus"
INIT = "/api/v1/videos/upload/init"


def uploads_of(server: LiveServer, user_id: str) -> int:
    async def count() -> int:
        async with orm_session(server.settings.resolved_database_url) as db:
            result = await db.execute(
                text("SELECT count(*) FROM videos WHERE user_id = :user"), {"user": user_id}
            )
            return int(result.scalar_one())

    return asyncio.run(count())


def local_files(server: LiveServer) -> set[str]:
    root = server.settings.local_storage_path
    return {path.name for path in root.iterdir()} if root.is_dir() else set()


REFUSED_BODIES = [
    pytest.param({"Upload-Length": "5"}, b"0123456789", 413, id="past-the-length"),
    pytest.param(
        {"Upload-Length": "10", "Upload-Checksum": checksum("sha1", b"other bytes")},
        b"0123456789",
        460,
        id="checksum-mismatch",
    ),
    pytest.param(
        {"Upload-Length": "10", "Upload-Checksum": "crc99 AAAA"},
        b"0123456789",
        400,
        id="unsupported-checksum",
    ),
]


@pytest.mark.parametrize(("headers", "body", "status"), REFUSED_BODIES)
def test_a_refused_creation_body_leaves_no_upload_behind(
    client: httpx.Client,
    server: LiveServer,
    user: User,
    session_id: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
) -> None:
    files_before = local_files(server)

    response = client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Metadata": metadata(session_id=session_id, filename="take.mp4"),
            "Content-Type": OCTETS,
            **headers,
        },
        content=body,
    )

    assert response.status_code == status, response.text
    assert "Location" not in response.headers
    assert uploads_of(server, user.id) == 0
    if server.settings.storage_backend == "local":
        assert local_files(server) <= files_before


@pytest.mark.parametrize(("headers", "body", "status"), REFUSED_BODIES)
def test_a_refused_body_on_an_initialised_upload_keeps_it_and_names_it(
    client: httpx.Client,
    server: LiveServer,
    user: User,
    session_id: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
) -> None:
    size = int(headers["Upload-Length"])
    init = client.post(
        INIT,
        json={
            "session_id": session_id,
            "filename": "take.mp4",
            "file_size": size,
            "duration_seconds": 10,
        },
        headers=user.bearer,
    )
    url = init.json()["upload_url"]

    response = client.post(
        url, headers={**user.headers, "Content-Type": OCTETS, **headers}, content=body
    )

    assert response.status_code == status, response.text
    assert response.headers["Location"] == url
    head = client.head(url, headers=user.headers)
    assert (head.status_code, head.headers["Upload-Offset"]) == (200, "0")
    assert uploads_of(server, user.id) == 1
