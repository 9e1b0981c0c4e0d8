"""The REST API around tus: init, status, complete, abort, retrieval with ranges, errors, OpenAPI.

Every test runs against a live server on each database x store back end, but those marked
`any_backend`, which run on one (see conftest).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.tus import OCTETS, TUS_PATH, metadata, patch_headers, pattern

API = "/api/v1"
INIT = f"{API}/videos/upload/init"
COMPLETE = f"{API}/videos/upload/complete"
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)")
SIZE = 1000


# -- helpers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Initialised:
    upload_id: str
    upload_url: str
    size: int
    body: dict[str, Any]


def init_body(session_id: str, /, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": session_id,
        "filename": "practice_video.mp4",
        "file_size": SIZE,
        "duration_seconds": 180,
        "content_type": "video/mp4",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def init(client: httpx.Client, user: User, session_id: str, **overrides: Any) -> Initialised:
    response = client.post(INIT, json=init_body(session_id, **overrides), headers=user.bearer)
    assert response.status_code == 201, response.text
    body = response.json()
    return Initialised(body["upload_id"], body["upload_url"], body_size(overrides), body)


def body_size(overrides: dict[str, Any]) -> int:
    size = overrides.get("file_size", SIZE)
    assert isinstance(size, int)
    return size


def send(
    client: httpx.Client, user: User, upload: Initialised, data: bytes, offset: int = 0
) -> None:
    response = client.patch(
        upload.upload_url, headers=patch_headers(user.headers, offset), content=data
    )
    assert response.status_code == 204, response.text
    assert response.headers["Upload-Offset"] == str(offset + len(data))


def status_of(client: httpx.Client, user: User, upload_id: str) -> httpx.Response:
    return client.get(f"{API}/videos/upload/{upload_id}/status", headers=user.bearer)


def complete(client: httpx.Client, user: User, upload_id: str) -> httpx.Response:
    return client.post(COMPLETE, json={"upload_id": upload_id}, headers=user.bearer)


def listed(client: httpx.Client, user: User, session_id: str) -> dict[str, dict[str, Any]]:
    """The session's videos, by upload id."""
    response = client.get(f"{API}/sessions/{session_id}/videos", headers=user.bearer)
    assert response.status_code == 200, response.text
    return {video["upload_id"]: video for video in response.json()}


def assert_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A REST error: one of `statuses`, a JSON body that is `{"error": {code, message}}` only."""
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


def utc(value: str) -> datetime:
    assert ISO_UTC.fullmatch(value), value
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0)
    return moment


@dataclass(frozen=True)
class Completed:
    upload_id: str
    video_id: str
    data: bytes


@pytest.fixture
def completed(client: httpx.Client, user: User, session_id: str) -> Completed:
    data = pattern(SIZE, seed=11)
    upload = init(client, user, session_id)
    send(client, user, upload, data)
    done = complete(client, user, upload.upload_id)
    assert done.status_code == 200, done.text
    return Completed(upload.upload_id, done.json()["id"], data)


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


# -- status --------------------------------------------------------------------------------


def test_status_reports_offset_size_and_percentage_as_bytes_arrive(
    client: httpx.Client, user: User, session_id: str
) -> None:
    data = pattern(SIZE, seed=5)
    upload = init(client, user, session_id)

    empty = status_of(client, user, upload.upload_id)
    assert empty.status_code == 200, empty.text
    body = empty.json()
    assert {"upload_id", "offset", "size", "completed", "expires_at", "percentage"} <= set(body)
    assert body["upload_id"] == upload.upload_id
    assert (body["offset"], body["size"], body["completed"]) == (0, SIZE, False)
    assert body["percentage"] == 0.0
    assert utc(body["expires_at"])

    send(client, user, upload, data[:250])
    quarter = status_of(client, user, upload.upload_id).json()
    assert (quarter["offset"], quarter["size"], quarter["completed"]) == (250, SIZE, False)
    assert quarter["percentage"] == 25.0

    send(client, user, upload, data[250:], offset=250)
    whole = status_of(client, user, upload.upload_id).json()
    assert (whole["offset"], whole["size"], whole["completed"]) == (SIZE, SIZE, True)
    assert whole["percentage"] == 100.0


def test_status_percentage_is_the_share_of_bytes_received(
    client: httpx.Client, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id, file_size=3)
    send(client, user, upload, b"x")
    percentage = status_of(client, user, upload.upload_id).json()["percentage"]
    assert isinstance(percentage, float)
    assert abs(percentage - 100 / 3) < 0.01


def test_status_of_an_unknown_upload_returns_404(client: httpx.Client, user: User) -> None:
    assert_error(status_of(client, user, "no-such-upload"), 404)


def test_status_of_another_users_upload_is_refused_without_data(
    client: httpx.Client, user: User, other_user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    assert_error(status_of(client, other_user, upload.upload_id), 403, 404)


def test_status_of_an_expired_upload_returns_410(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    server.clock.advance(hours=server.settings.upload_expiration_hours + 1)
    try:
        response = status_of(client, user, upload.upload_id)
    finally:
        server.clock.advance(hours=-(server.settings.upload_expiration_hours + 1))
    assert_error(response, 410)


# -- complete ------------------------------------------------------------------------------


def test_complete_before_every_byte_arrived_returns_409_with_the_offset(
    client: httpx.Client, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    send(client, user, upload, pattern(250))
    error = assert_error(complete(client, user, upload.upload_id), 409)
    assert error["details"]["offset"] == 250
    assert status_of(client, user, upload.upload_id).json()["completed"] is False


def test_complete_of_an_empty_upload_returns_409_with_offset_0(
    client: httpx.Client, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    error = assert_error(complete(client, user, upload.upload_id), 409)
    assert error["details"]["offset"] == 0


def test_complete_returns_the_completed_video_record(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    data = pattern(SIZE, seed=9)
    upload = init(client, user, session_id, filename="scales.mov", content_type="video/quicktime")
    send(client, user, upload, data)
    response = complete(client, user, upload.upload_id)
    assert response.status_code == 200, response.text
    video = response.json()
    uuid.UUID(video["id"])
    assert video["session_id"] == session_id
    assert video["upload_id"] == upload.upload_id
    assert video["filename"] == "scales.mov"
    assert video["size"] == SIZE
    assert video["content_type"] == "video/quicktime"
    assert video["status"] == "completed"
    created, updated = utc(video["created_at"]), utc(video["updated_at"])
    finished = utc(video["completed_at"])
    assert created <= updated
    assert created <= finished
    assert abs(server.clock() - finished) < timedelta(minutes=1)


def test_complete_twice_returns_the_same_video(
    client: httpx.Client, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    send(client, user, upload, pattern(SIZE))
    first = complete(client, user, upload.upload_id)
    second = complete(client, user, upload.upload_id)
    assert first.status_code == second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["status"] == "completed"
    assert second.json()["completed_at"] == first.json()["completed_at"]
    assert len(listed(client, user, session_id)) == 1


def test_complete_of_an_unknown_upload_returns_404(client: httpx.Client, user: User) -> None:
    assert_error(complete(client, user, "no-such-upload"), 404)


def test_complete_of_another_users_upload_is_refused_and_changes_nothing(
    client: httpx.Client, user: User, other_user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    send(client, user, upload, pattern(SIZE))
    assert_error(complete(client, other_user, upload.upload_id), 403, 404)
    assert listed(client, user, session_id)[upload.upload_id]["status"] != "completed"


@pytest.mark.any_backend
@pytest.mark.parametrize("body", [{}, {"upload_id": 5}, {"upload_id": ""}])
def test_complete_without_a_valid_upload_id_returns_422(
    client: httpx.Client, user: User, body: dict[str, Any]
) -> None:
    error = assert_error(client.post(COMPLETE, json=body, headers=user.bearer), 422)
    assert "upload_id" in [problem["field"] for problem in error["details"]["fields"]]


# -- abort ---------------------------------------------------------------------------------


def test_abort_makes_the_upload_gone_for_tus_status_and_complete(
    client: httpx.Client, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    send(client, user, upload, pattern(100))
    response = client.delete(f"{API}/videos/upload/{upload.upload_id}", headers=user.bearer)
    assert response.status_code == 204, response.text

    assert client.head(upload.upload_url, headers=user.headers).status_code in (404, 410)
    patch = client.patch(upload.upload_url, headers=patch_headers(user.headers, 100), content=b"x")
    assert patch.status_code in (404, 410)
    created = client.post(upload.upload_url, headers={**user.headers, "Upload-Length": str(SIZE)})
    assert created.status_code in (404, 410)
    assert_error(status_of(client, user, upload.upload_id), 404, 410)
    assert_error(complete(client, user, upload.upload_id), 404, 410)
    assert upload.upload_id not in listed(client, user, session_id)


def test_abort_of_an_unknown_upload_returns_404(client: httpx.Client, user: User) -> None:
    assert_error(client.delete(f"{API}/videos/upload/no-such-upload", headers=user.bearer), 404)


def test_abort_by_another_user_is_refused_and_keeps_the_upload(
    client: httpx.Client, user: User, other_user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    send(client, user, upload, pattern(100))
    response = client.delete(f"{API}/videos/upload/{upload.upload_id}", headers=other_user.bearer)
    assert_error(response, 403, 404)
    assert status_of(client, user, upload.upload_id).json()["offset"] == 100


# -- tus creation of an initialised upload (tus-js-client with endpoint: upload_url) --------


def tus_post(
    client: httpx.Client, user: User, upload: Initialised, length: int, body: bytes = b""
) -> httpx.Response:
    headers = {
        **user.headers,
        "Upload-Length": str(length),
        "Upload-Metadata": metadata(filename="practice_video.mp4", filetype="video/mp4"),
    }
    if body:
        headers["Content-Type"] = OCTETS
    return client.post(upload.upload_url, headers=headers, content=body)


def test_tus_post_to_an_initialised_upload_adopts_it(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    data = pattern(SIZE, seed=21)
    upload = init(client, user, session_id)
    response = tus_post(client, user, upload, SIZE)
    assert response.status_code == 201, response.text
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Location"] == upload.upload_url
    send(client, user, upload, data)
    done = complete(client, user, upload.upload_id)
    assert done.status_code == 200, done.text
    assert list(listed(client, user, session_id)) == [upload.upload_id]


def test_tus_post_to_an_initialised_upload_with_a_body_writes_it(
    client: httpx.Client, user: User, session_id: str
) -> None:
    data = pattern(SIZE, seed=22)
    upload = init(client, user, session_id)
    response = tus_post(client, user, upload, SIZE, body=data[:400])
    assert response.status_code == 201, response.text
    assert response.headers["Upload-Offset"] == "400"
    assert status_of(client, user, upload.upload_id).json()["offset"] == 400
    send(client, user, upload, data[400:], offset=400)
    done = complete(client, user, upload.upload_id)
    assert done.status_code == 200, done.text
    content = client.get(f"{API}/videos/{done.json()['id']}/content", headers=user.bearer)
    assert content.content == data


@pytest.mark.parametrize("length", [SIZE - 1, SIZE + 1])
def test_tus_post_to_an_initialised_upload_with_another_length_returns_409(
    client: httpx.Client, user: User, session_id: str, length: int
) -> None:
    upload = init(client, user, session_id)
    assert tus_post(client, user, upload, length).status_code == 409
    status = status_of(client, user, upload.upload_id).json()
    assert (status["offset"], status["size"]) == (0, SIZE)


def test_tus_post_to_an_initialised_upload_by_another_user_is_refused(
    client: httpx.Client, user: User, other_user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    refused = tus_post(client, other_user, upload, SIZE, body=pattern(10))
    assert refused.status_code in (403, 404)
    assert "Location" not in refused.headers
    assert status_of(client, user, upload.upload_id).json()["offset"] == 0
    assert tus_post(client, user, upload, SIZE).status_code == 201


def test_tus_post_to_an_initialised_upload_that_has_bytes_returns_409(
    client: httpx.Client, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    send(client, user, upload, pattern(100))
    assert tus_post(client, user, upload, SIZE).status_code == 409
    assert status_of(client, user, upload.upload_id).json()["offset"] == 100


def test_tus_post_to_an_unknown_upload_url_returns_404(client: httpx.Client, user: User) -> None:
    response = client.post(
        f"{TUS_PATH}/no-such-upload", headers={**user.headers, "Upload-Length": "10"}
    )
    assert response.status_code == 404


# -- retrieval -----------------------------------------------------------------------------


def test_session_videos_lists_each_upload_with_status_sizes_and_progress(
    client: httpx.Client, user: User, session_id: str, completed: Completed
) -> None:
    partial = init(client, user, session_id, file_size=400, filename="second.mp4")
    send(client, user, partial, pattern(100))
    videos = listed(client, user, session_id)
    assert set(videos) == {completed.upload_id, partial.upload_id}

    done = videos[completed.upload_id]
    assert done["id"] == completed.video_id
    assert done["status"] == "completed"
    assert (done["size"], done["offset"], done["percentage"]) == (SIZE, SIZE, 100.0)
    assert done["session_id"] == session_id

    going = videos[partial.upload_id]
    uuid.UUID(going["id"])
    assert going["status"] != "completed"
    assert (going["size"], going["offset"], going["percentage"]) == (400, 100, 25.0)
    assert going["filename"] == "second.mp4"


def test_session_videos_of_a_new_session_is_empty(
    client: httpx.Client, user: User, session_id: str
) -> None:
    assert listed(client, user, session_id) == {}


def test_session_videos_of_an_unknown_session_returns_404(client: httpx.Client, user: User) -> None:
    response = client.get(f"{API}/sessions/{uuid.uuid4()}/videos", headers=user.bearer)
    assert_error(response, 404)


def test_get_video_returns_its_record(
    client: httpx.Client, user: User, session_id: str, completed: Completed
) -> None:
    response = client.get(f"{API}/videos/{completed.video_id}", headers=user.bearer)
    assert response.status_code == 200, response.text
    video = response.json()
    assert video["id"] == completed.video_id
    assert video["upload_id"] == completed.upload_id
    assert video["session_id"] == session_id
    assert (video["size"], video["status"]) == (SIZE, "completed")


def test_get_an_unknown_video_returns_404(client: httpx.Client, user: User) -> None:
    assert_error(client.get(f"{API}/videos/{uuid.uuid4()}", headers=user.bearer), 404)
    content = client.get(f"{API}/videos/{uuid.uuid4()}/content", headers=user.bearer)
    assert_error(content, 404)


def test_content_streams_the_whole_completed_video(
    client: httpx.Client, user: User, completed: Completed
) -> None:
    response = client.get(f"{API}/videos/{completed.video_id}/content", headers=user.bearer)
    assert response.status_code == 200
    assert response.content == completed.data
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["Content-Type"].startswith("video/mp4")
    assert "Content-Range" not in response.headers


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=500-500", 500, 500),
        ("bytes=100-", 100, SIZE - 1),
        ("bytes=-100", SIZE - 100, SIZE - 1),
        ("bytes=-5000", 0, SIZE - 1),
        ("bytes=900-5000", 900, SIZE - 1),
        ("bytes=0-", 0, SIZE - 1),
    ],
)
def test_content_answers_a_range_with_206_and_content_range(
    client: httpx.Client, user: User, completed: Completed, header: str, start: int, end: int
) -> None:
    response = client.get(
        f"{API}/videos/{completed.video_id}/content", headers={**user.bearer, "Range": header}
    )
    assert response.status_code == 206, response.text
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["Content-Length"] == str(end - start + 1)
    assert response.content == completed.data[start : end + 1]


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE}-{SIZE + 10}", "bytes=-0"])
def test_content_with_an_unsatisfiable_range_returns_416(
    client: httpx.Client, user: User, completed: Completed, header: str
) -> None:
    response = client.get(
        f"{API}/videos/{completed.video_id}/content", headers={**user.bearer, "Range": header}
    )
    assert_error(response, 416)
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"


def test_content_of_an_incomplete_video_is_not_served(
    client: httpx.Client, user: User, session_id: str
) -> None:
    upload = init(client, user, session_id)
    send(client, user, upload, pattern(100))
    video_id = listed(client, user, session_id)[upload.upload_id]["id"]
    response = client.get(f"{API}/videos/{video_id}/content", headers=user.bearer)
    assert_error(response, 404, 409)


# -- ownership, authentication, errors -----------------------------------------------------


def owner_only_requests(
    session_id: str, completed: Completed
) -> list[tuple[str, str, dict[str, Any] | None]]:
    video = f"{API}/videos/{completed.video_id}"
    return [
        ("GET", f"{API}/videos/upload/{completed.upload_id}/status", None),
        ("POST", COMPLETE, {"upload_id": completed.upload_id}),
        ("DELETE", f"{API}/videos/upload/{completed.upload_id}", None),
        ("GET", f"{API}/sessions/{session_id}", None),
        ("GET", f"{API}/sessions/{session_id}/videos", None),
        ("GET", video, None),
        ("GET", f"{video}/content", None),
        ("POST", INIT, init_body(session_id)),
    ]


def test_every_endpoint_refuses_another_user_without_data(
    client: httpx.Client, user: User, other_user: User, session_id: str, completed: Completed
) -> None:
    for method, url, body in owner_only_requests(session_id, completed):
        response = client.request(method, url, json=body, headers=other_user.bearer)
        assert_error(response, 403, 404)
        assert completed.upload_id not in response.text
        assert completed.data not in response.content
    # Nothing changed for the owner.
    assert set(listed(client, user, session_id)) == {completed.upload_id}
    content = client.get(f"{API}/videos/{completed.video_id}/content", headers=user.bearer)
    assert content.content == completed.data


@pytest.mark.parametrize(
    "authorization", [None, "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer"]
)
def test_every_endpoint_without_a_valid_token_returns_401(
    client: httpx.Client,
    user: User,
    session_id: str,
    completed: Completed,
    authorization: str | None,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, url, body in owner_only_requests(session_id, completed):
        response = client.request(method, url, json=body, headers=headers)
        error = assert_error(response, 401)
        assert error["code"] == "unauthorized"
    assert set(listed(client, user, session_id)) == {completed.upload_id}


@pytest.mark.any_backend
def test_unknown_api_paths_and_methods_answer_with_json_errors(
    client: httpx.Client, user: User
) -> None:
    assert_error(client.get(f"{API}/nothing-here", headers=user.bearer), 404)
    assert_error(client.put(INIT, headers=user.bearer), 405)


# -- OpenAPI -------------------------------------------------------------------------------

REST_OPERATIONS: list[tuple[str, str, str, str | None, set[int]]] = [
    # method, path, success status, success schema, documented error statuses
    ("post", f"{API}/videos/upload/init", "201", "UploadInitOut", {400, 403, 404, 413, 415}),
    ("get", f"{API}/videos/upload/{{upload_id}}/status", "200", "UploadStatus", {403, 404}),
    ("post", f"{API}/videos/upload/complete", "200", "VideoOut", {403, 404, 409}),
    ("delete", f"{API}/videos/upload/{{upload_id}}", "204", None, {403, 404}),
    ("post", f"{API}/sessions", "201", "SessionOut", set()),
    ("get", f"{API}/sessions/{{session_id}}", "200", "SessionOut", {403, 404}),
    ("get", f"{API}/sessions/{{session_id}}/videos", "200", "VideoOut", {403, 404}),
    ("get", f"{API}/videos/{{video_id}}", "200", "VideoOut", {403, 404}),
    ("get", f"{API}/videos/{{video_id}}/content", "200", None, {403, 404, 416}),
]


def schema_refs(schema: Any) -> set[str]:
    """Every component a schema fragment refers to, however deeply nested."""
    if isinstance(schema, dict):
        found = {str(schema["$ref"]).rsplit("/", 1)[-1]} if "$ref" in schema else set()
        for value in schema.values():
            found |= schema_refs(value)
        return found
    if isinstance(schema, list):
        return set().union(*(schema_refs(item) for item in schema))
    return set()


@pytest.mark.any_backend
def test_openapi_documents_every_rest_endpoint_with_schemas_and_error_responses(
    client: httpx.Client,
) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    schemas = document["components"]["schemas"]
    assert {"code", "message"} <= set(schemas["ErrorDetail"]["required"])
    assert schema_refs(schemas["ErrorResponse"]) == {"ErrorDetail"}
    assert {"session_id", "filename", "file_size", "duration_seconds"} <= set(
        schemas["UploadInit"]["required"]
    )
    assert {"upload_id", "upload_url", "expires_at", "chunk_size"} <= set(
        schemas["UploadInitOut"]["properties"]
    )
    assert set(schemas["UploadComplete"]["required"]) == {"upload_id"}

    for method, path, success, success_schema, errors in REST_OPERATIONS:
        operation = document["paths"][path][method]
        responses = operation["responses"]
        assert success in responses, (method, path)
        if success_schema is not None:
            assert success_schema in schema_refs(responses[success]), (method, path)
        for status in {401, 422} | errors:
            assert str(status) in responses, (method, path, status)
            assert schema_refs(responses[str(status)]) == {"ErrorResponse"}, (method, path, status)

    init_op = document["paths"][f"{API}/videos/upload/init"]["post"]
    assert schema_refs(init_op["requestBody"]) == {"UploadInit"}
    complete_op = document["paths"][COMPLETE]["post"]
    assert schema_refs(complete_op["requestBody"]) == {"UploadComplete"}
    content = document["paths"][f"{API}/videos/{{video_id}}/content"]["get"]["responses"]
    assert "206" in content


TUS_OPERATIONS = [
    # method, path, success, request headers documented, statuses beyond 401 and 412
    (
        "post",
        "/api/v1/videos/tus",
        "201",
        {"Upload-Length", "Upload-Metadata"},
        {400, 413, 460, 507},
    ),
    ("post", "/api/v1/videos/tus/{upload_id}", "201", {"Upload-Length"}, {404, 409, 460}),
    ("head", "/api/v1/videos/tus/{upload_id}", "200", set(), {403, 404, 410}),
    ("patch", "/api/v1/videos/tus/{upload_id}", "204", {"Upload-Offset"}, {409, 415, 460, 507}),
    ("delete", "/api/v1/videos/tus/{upload_id}", "204", set(), {403, 404}),
]


@pytest.mark.any_backend
def test_openapi_documents_the_tus_endpoints_headers_and_answers(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    for method, path, success, headers, errors in TUS_OPERATIONS:
        operation = document["paths"][path][method]
        responses = operation["responses"]
        assert success in responses, (method, path)
        for status in {401, 412} | errors:
            assert "text/plain" in responses[str(status)]["content"], (method, path, status)
        assert "422" not in responses, (method, path)  # FastAPI's JSON 422 is never sent here
        documented = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        assert documented["Tus-Resumable"]["required"] is True, (method, path)
        assert headers <= set(documented), (method, path)
    patch = document["paths"]["/api/v1/videos/tus/{upload_id}"]["patch"]
    assert list(patch["requestBody"]["content"]) == ["application/offset+octet-stream"]


@pytest.mark.any_backend
def test_openapi_requires_the_bearer_token_on_every_api_operation(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    unprotected = [
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/api/") and operation.get("security") != [{"bearerAuth": []}]
    ]
    assert unprotected == []


@pytest.mark.any_backend
def test_docs_page_is_served(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
