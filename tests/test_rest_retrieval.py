"""REST retrieval of finished videos (listing, records, content with ranges) and what every
endpoint refuses: another user, a missing token, unknown paths.

Every test runs against a live server on each database x store back end, but those marked
`any_backend`, which run on one (see conftest).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import User
from tests.support.rest import (
    API,
    COMPLETE,
    INIT,
    SIZE,
    assert_error,
    complete,
    init,
    init_body,
    listed,
    send,
)
from tests.support.tus import pattern


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
