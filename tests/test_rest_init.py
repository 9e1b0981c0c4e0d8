"""REST `upload/init`: what it checks before an upload exists (session, size, duration, type,
fields) and the tus upload it creates.

Every test runs against a live server on each database x store back end, but those marked
`any_backend`, which run on one (see conftest).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.rest import (
    API,
    INIT,
    SIZE,
    assert_error,
    complete,
    init,
    init_body,
    listed,
    send,
    utc,
)
from tests.support.tus import TUS_PATH, pattern

# -- init ----------------------------------------------------------------------------------


def test_init_returns_201_with_tus_upload_url_utc_expiry_and_chunk_size(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    body = upload.body
    assert {"upload_id", "upload_url", "expires_at", "chunk_size"} <= set(body)
    assert upload.upload_id
    # absolute, from the request's Host: React Native or Node clients have nothing to resolve
    # a relative URL against
    assert upload.upload_url == f"{server.base_url}{TUS_PATH}/{upload.upload_id}"
    assert body["chunk_size"] == server.settings.upload_chunk_size
    expected = server.clock() + timedelta(hours=server.settings.upload_expiration_hours)
    assert abs(utc(body["expires_at"]) - expected) < timedelta(minutes=1)


def test_init_creates_an_empty_tus_upload_of_the_declared_length(
    client: httpx.Client, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id, file_size=12345)
    head = client.head(upload.upload_url, headers=user.headers)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == "12345"


def test_init_for_an_unknown_session_returns_404(client: httpx.Client, user: User) -> None:
    response = client.post(INIT, json=init_body(str(uuid.uuid4())), headers=user.bearer)
    assert_error(response, 404)


def test_init_for_another_users_session_returns_403(
    client: httpx.Client, other_user: User, session_id: str
) -> None:
    response = client.post(INIT, json=init_body(session_id), headers=other_user.bearer)
    assert_error(response, 403)


@pytest.mark.any_backend
@pytest.mark.parametrize("file_size", [0, -1])
def test_init_with_non_positive_file_size_returns_400(
    client: httpx.Client, user: User, session_id: str, file_size: int
) -> None:
    response = client.post(
        INIT, json=init_body(session_id, file_size=file_size), headers=user.bearer
    )
    assert_error(response, 400)


@pytest.mark.any_backend
def test_init_with_file_size_over_limit_returns_413(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    too_big = server.settings.max_video_size_mb * 1024 * 1024 + 1
    response = client.post(INIT, json=init_body(session_id, file_size=too_big), headers=user.bearer)
    assert_error(response, 413)


def test_init_with_file_size_at_limit_is_accepted(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    limit = server.settings.max_video_size_mb * 1024 * 1024
    assert init(client, user, session_id, file_size=limit).body["upload_id"]


@pytest.mark.any_backend
@pytest.mark.parametrize("duration", [0, -5])
def test_init_with_non_positive_duration_returns_400(
    client: httpx.Client, user: User, session_id: str, duration: float
) -> None:
    body = init_body(session_id, duration_seconds=duration)
    assert_error(client.post(INIT, json=body, headers=user.bearer), 400)


@pytest.mark.any_backend
def test_init_with_duration_over_limit_returns_400(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    too_long = server.settings.max_video_duration_minutes * 60 + 0.5
    body = init_body(session_id, duration_seconds=too_long)
    assert_error(client.post(INIT, json=body, headers=user.bearer), 400)


def test_init_with_duration_at_limit_is_accepted(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    limit = server.settings.max_video_duration_minutes * 60
    upload = init(client, user, session_id, duration_seconds=limit)
    assert listed(client, user, session_id)[upload.upload_id]["declared_duration_seconds"] == limit


@pytest.mark.any_backend
@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("practice_video.mp4", "image/png"),
        ("practice_video.mp4", "application/pdf"),
        ("practice_video.mp4", "audio/mpeg"),
    ],
)
def test_init_with_a_non_video_content_type_returns_415(
    client: httpx.Client, user: User, session_id: str, filename: str, content_type: str
) -> None:
    body = init_body(session_id, filename=filename, content_type=content_type)
    assert_error(client.post(INIT, json=body, headers=user.bearer), 415)


@pytest.mark.any_backend
@pytest.mark.parametrize("filename", ["notes.txt", "song.mp3", "photo.jpg", "no-extension"])
def test_init_without_content_type_and_a_non_video_filename_returns_415(
    client: httpx.Client, user: User, session_id: str, filename: str
) -> None:
    body = init_body(session_id, filename=filename, content_type=...)
    assert_error(client.post(INIT, json=body, headers=user.bearer), 415)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [("take.mov", "video/quicktime"), ("take.MP4", "video/mp4"), ("take.webm", "video/webm")],
)
def test_init_without_content_type_guesses_a_video_type_from_the_filename(
    client: httpx.Client, user: User, session_id: str, filename: str, expected: str
) -> None:
    upload = init(client, user, session_id, filename=filename, content_type=...)
    assert listed(client, user, session_id)[upload.upload_id]["content_type"] == expected


def test_init_with_a_declared_video_type_accepts_any_filename(
    client: httpx.Client, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id, filename="clip", content_type="video/quicktime")
    assert listed(client, user, session_id)[upload.upload_id]["content_type"] == "video/quicktime"


@pytest.mark.any_backend
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("session_id", ...),
        ("filename", ...),
        ("file_size", ...),
        ("duration_seconds", ...),
        ("session_id", "not-a-uuid"),
        ("session_id", 42),
        ("filename", ""),
        ("filename", None),
        ("file_size", "big"),
        ("file_size", 1.5),
        ("duration_seconds", "three minutes"),
        ("content_type", 7),
    ],
)
def test_init_with_a_missing_or_mistyped_field_returns_422_naming_it(
    client: httpx.Client, user: User, session_id: str, field: str, value: Any
) -> None:
    body = init_body(session_id, **{field: value})
    error = assert_error(client.post(INIT, json=body, headers=user.bearer), 422)
    assert error["code"] == "validation_error"
    assert field in [problem["field"] for problem in error["details"]["fields"]]


@pytest.mark.any_backend
@pytest.mark.parametrize("content", [b"", b"{not json", b"[]"])
def test_init_with_a_body_that_is_not_a_json_object_returns_422(
    client: httpx.Client, user: User, content: bytes
) -> None:
    headers = {**user.bearer, "Content-Type": "application/json"}
    error = assert_error(client.post(INIT, content=content, headers=headers), 422)
    assert error["details"]["fields"]


@pytest.mark.parametrize(
    ("filename", "kept"),
    [
        ("../../etc/passwd.mp4", "passwd.mp4"),
        ("..\\..\\windows\\system32\\evil.mp4", "evil.mp4"),
        ("/absolute/path/bowing-drill-7f3a.mp4", "bowing-drill-7f3a.mp4"),
    ],
)
def test_init_keeps_only_the_last_path_component_of_filename_as_display_name(
    client: httpx.Client,
    server: LiveServer,
    user: User,
    session_id: str,
    filename: str,
    kept: str,
) -> None:
    data = pattern(SIZE, seed=3)
    upload = init(client, user, session_id, filename=filename)
    send(client, user, upload, data)
    done = complete(client, user, upload.upload_id)
    assert done.status_code == 200, done.text
    assert done.json()["filename"] == kept
    content = client.get(f"{API}/videos/{done.json()['id']}/content", headers=user.bearer)
    assert content.content == data
    assert kept in content.headers["Content-Disposition"]
    # The name never reaches storage: no file near the server's data, no object key, has it.
    near = server.settings.data_dir.parent
    assert [path for path in near.rglob("*") if kept in path.name] == []
    if server.settings.storage_backend == "s3":
        from tests.support.s3server import leftover_objects

        settings = server.settings
        keys = leftover_objects(settings.s3_endpoint_url, settings.s3_bucket_name)
        assert keys, "the s3 store keeps the video as an object"
        assert [key for key in keys if kept in key or "passwd" in key] == []
