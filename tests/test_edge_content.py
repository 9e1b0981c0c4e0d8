"""A finished video's bytes: checked in storage before any header is sent, HEAD, and Range
headers with numbers too large to parse or ranges that are invalid."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.s3server import s3_client
from tests.support.tus import OCTETS, metadata, pattern
from video_upload.domain.records import Video
from video_upload.lifecycle.service import stored
from video_upload.storage.base import ByteRange, StoredUpload
from video_upload.storage.local import LocalStore
from video_upload.storage.s3_parts import UploadState

TUS_PATH = "/api/v1/videos/tus"
API = "/api/v1"
SIZE = 1000
HUGE = "9" * 4301  # int() refuses strings of 4,300 digits or more


def finished_video(
    client: httpx.Client, user: User, session_id: str, data: bytes
) -> tuple[str, str]:
    """Upload `data` with creation-with-upload and complete it: (upload id, video id)."""
    created = client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(session_id=session_id, filename="take.mp4"),
            "Content-Type": OCTETS,
        },
        content=data,
    )
    assert created.status_code == 201, created.text
    upload_id = created.headers["Location"].rsplit("/", 1)[1]
    done = client.post(
        f"{API}/videos/upload/complete", json={"upload_id": upload_id}, headers=user.bearer
    )
    assert done.status_code == 200, done.text
    return upload_id, str(done.json()["id"])


def content_url(video_id: str) -> str:
    return f"{API}/videos/{video_id}/content"


def test_content_whose_bytes_are_gone_is_404_content_missing_before_any_header(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    upload_id, video_id = finished_video(client, user, session_id, pattern(SIZE))
    video = server.run(server.services.uploads.get(user.id, upload_id))
    server.run(server.store.terminate(stored(video)))

    response = client.get(content_url(video_id), headers=user.bearer)
    head = client.head(content_url(video_id), headers=user.bearer)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "content_missing"
    assert head.status_code == 404
    # the record is as it was
    record = client.get(f"{API}/videos/{video_id}", headers=user.bearer).json()
    assert (record["status"], record["size"]) == ("completed", SIZE)


def cut_short(server: LiveServer, video: Video, size: int) -> None:
    """Leave only the first `size` bytes of a finished video in its store (a file truncated by
    hand, an object overwritten)."""
    upload = stored(video)
    if isinstance(server.store, LocalStore):
        os.truncate(server.store.path_for(upload.key), size)
        return
    object_key = UploadState.from_dict(upload.state, "").object_key
    assert object_key
    s3 = s3_client(server.settings.s3_endpoint_url)
    bucket = server.settings.s3_bucket_name
    content = s3.get_object(Bucket=bucket, Key=object_key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=object_key, Body=content[:size])


def test_content_cut_short_in_storage_is_404_content_missing_before_any_header(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    """A download never starts with a Content-Length the store cannot fill: the bytes are read
    (the range's last byte included) before the answer starts."""
    upload_id, video_id = finished_video(client, user, session_id, pattern(SIZE))
    video = server.run(server.services.uploads.get(user.id, upload_id))
    cut_short(server, video, SIZE // 2)

    response = client.get(content_url(video_id), headers=user.bearer)
    head = client.head(content_url(video_id), headers=user.bearer)
    first_half = client.get(
        content_url(video_id), headers={**user.bearer, "Range": f"bytes=0-{SIZE // 2 - 1}"}
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "content_missing"
    assert head.status_code == 404
    assert first_half.status_code == 206
    assert first_half.content == pattern(SIZE)[: SIZE // 2]


def test_content_during_a_storage_outage_is_503_with_retry_after(
    client: httpx.Client,
    server: LiveServer,
    user: User,
    session_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, video_id = finished_video(client, user, session_id, pattern(SIZE))

    async def unreachable(upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        from video_upload.storage.base import StorageError

        raise StorageError("connection refused")
        yield b""  # an async generator, as the stores' reads are

    monkeypatch.setattr(server.store, "read", unreachable)
    response = client.get(content_url(video_id), headers=user.bearer)
    monkeypatch.undo()

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert client.get(content_url(video_id), headers=user.bearer).status_code == 200


def test_head_content_gives_length_type_and_ranges_without_a_body(
    client: httpx.Client, user: User, session_id: str
) -> None:
    _, video_id = finished_video(client, user, session_id, pattern(SIZE))

    head = client.head(content_url(video_id), headers=user.bearer)

    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(SIZE)
    assert head.headers["Content-Type"] == "video/mp4"
    assert head.headers["Accept-Ranges"] == "bytes"
    assert head.content == b""


@pytest.mark.parametrize(
    ("header", "status", "expected"),
    [
        (f"bytes={HUGE}-", 416, None),
        (f"bytes=10-{HUGE}", 206, (10, SIZE - 1)),
        (f"bytes=-{HUGE}", 206, (0, SIZE - 1)),
        ("bytes=5-3", 200, (0, SIZE - 1)),
        ("bytes=0-4", 206, (0, 4)),
    ],
)
def test_range_numbers_too_large_to_parse_and_invalid_ranges_are_answered(
    client: httpx.Client,
    user: User,
    session_id: str,
    header: str,
    status: int,
    expected: tuple[int, int] | None,
) -> None:
    data = pattern(SIZE, seed=3)
    _, video_id = finished_video(client, user, session_id, data)

    response = client.get(content_url(video_id), headers={**user.bearer, "Range": header})

    assert response.status_code == status, response.text
    if expected is None:
        assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    else:
        start, end = expected
        assert response.content == data[start : end + 1]
