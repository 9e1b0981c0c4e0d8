"""REST status, complete and abort of an initialised upload, and tus-js-client's creation POST
to its `upload_url`.

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
    COMPLETE,
    SIZE,
    Initialised,
    assert_error,
    complete,
    init,
    listed,
    send,
    status_of,
    utc,
)
from tests.support.tus import OCTETS, TUS_PATH, metadata, patch_headers, pattern

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
