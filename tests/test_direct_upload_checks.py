"""Direct uploads: what creating one checks (what `upload/init` checks, and the key is the
service's), that the direct, tus and REST routes each keep to their own uploads, and that only
the owner, with a token, reaches one.

They run against SeaweedFS's S3, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os

import httpx

from tests.support.direct import BASE, Direct, held

# fixtures, imported by name for pytest to find them
from tests.support.direct import direct as direct
from tests.support.direct import direct_server as direct_server
from tests.support.live import LiveServer
from tests.support.tus import patch_headers

# -- the checks of upload/init --------------------------------------------------------------------


def test_creation_checks_what_upload_init_checks(direct: Direct, direct_server: LiveServer) -> None:
    settings = direct_server.settings
    cases = [
        (direct.create(settings.max_upload_size + 1), 413, "file_too_large"),
        (direct.create(0), 400, "invalid_upload_length"),
        (direct.create(100, duration=settings.max_duration_seconds + 1), 400, "invalid_duration"),
        (direct.create(100, duration=0), 400, "invalid_duration"),
        (
            direct.create(100, filename="notes.txt", content_type="text/plain"),
            415,
            "unsupported_media_type",
        ),
        (direct.create(100, session_id="not-a-session"), 422, "validation_error"),
        (
            direct.create(100, session_id="00000000-0000-4000-8000-000000000000"),
            404,
            "session_not_found",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        assert response.json()["message"] == response.json()["error"]["message"]
    missing = direct.http.post(f"{BASE}/multipart", json={"filename": "a.mp4", "metadata": {}})
    assert missing.status_code == 422
    assert "metadata.file_size" in missing.json()["message"]


def test_the_service_chooses_the_key_whatever_the_file_is_called(direct: Direct) -> None:
    upload = direct.start(10, filename="../../etc/passwd.mp4")

    assert upload["key"].endswith(upload["uploadId"])
    video = direct.http.get(f"/api/v1/videos/{upload['videoId']}").json()
    assert video["filename"] == "passwd.mp4"
    assert video["status"] == "pending"


def test_a_key_that_is_not_the_uploads_is_refused(direct: Direct) -> None:
    upload = direct.start(10)
    wrong = {**upload, "key": upload["key"] + "x"}

    for response in (direct.sign(wrong, 1), direct.parts(wrong), direct.abort(wrong)):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "key_mismatch"


def test_single_request_uploads_are_refused_with_a_reason(direct: Direct) -> None:
    response = direct.http.get(f"{BASE}/params", params={"filename": "a.mp4", "type": "video/mp4"})

    assert response.status_code == 400
    assert "shouldUseMultipart" in response.json()["message"]


def test_tus_cannot_write_to_a_direct_upload(direct: Direct, direct_server: LiveServer) -> None:
    upload = direct.start(100)
    url = f"/api/v1/videos/tus/{upload['uploadId']}"

    response = direct.http.patch(
        url, headers=patch_headers(direct.user.headers, 0), content=os.urandom(100)
    )

    assert response.status_code == 409, response.text
    assert held(direct_server, upload) == ([], [upload["key"]])
    assert direct.parts(upload).json() == []


def test_the_rest_api_sees_a_direct_upload_like_any_other(direct: Direct) -> None:
    data = os.urandom(300)
    upload = direct.start(len(data))
    rest_complete = {"upload_id": upload["uploadId"]}
    etag = direct.put_part(upload, 1, data)

    early = direct.http.post("/api/v1/videos/upload/complete", json=rest_complete)
    assert early.status_code == 409 and early.json()["error"]["code"] == "upload_incomplete"
    assert direct.complete(upload, [{"PartNumber": 1, "ETag": etag}]).status_code == 200
    late = direct.http.post("/api/v1/videos/upload/complete", json=rest_complete)
    assert late.status_code == 200 and late.json()["status"] == "completed"
    status = direct.http.get(f"/api/v1/videos/upload/{upload['uploadId']}/status").json()
    assert (status["completed"], status["offset"], status["size"]) == (True, 300, 300)
    refused = direct.abort(upload)  # a finished video is deleted through the REST API
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "upload_already_completed"


def test_a_tus_upload_is_not_reached_through_the_direct_routes(direct: Direct) -> None:
    init = direct.http.post(
        "/api/v1/videos/upload/init",
        json={
            "session_id": direct.session(),
            "filename": "take.mp4",
            "file_size": 100,
            "duration_seconds": 3,
        },
    )
    assert init.status_code == 201, init.text
    upload = {"uploadId": init.json()["upload_id"], "key": "anything"}

    for answer in (direct.sign(upload, 1), direct.parts(upload), direct.complete(upload, [])):
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "not_a_direct_upload"


# -- owners only --------------------------------------------------------------------------------


def test_another_user_can_neither_create_sign_list_complete_nor_abort(
    direct: Direct, direct_server: LiveServer
) -> None:
    session_id = direct.session()
    upload = direct.start(100, session_id=session_id)
    direct.put_part(upload, 1, os.urandom(100))
    intruder = Direct(direct_server)
    try:
        answers = {
            "create": intruder.create(100, session_id=session_id),
            "sign": intruder.sign(upload, 1),
            "list": intruder.parts(upload),
            "complete": intruder.complete(upload, []),
            "abort": intruder.abort(upload),
        }
    finally:
        intruder.close()

    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
        answers, 403
    )
    assert held(direct_server, upload) == ([], [upload["key"]])
    assert direct.complete(upload, []).status_code == 200


def test_every_route_needs_a_token(direct: Direct) -> None:
    upload = direct.start(10)
    anonymous = httpx.Client(base_url=direct.server.base_url)
    with anonymous:
        answers = [
            anonymous.post(f"{BASE}/multipart", json={}),
            anonymous.get(f"{BASE}/multipart/{upload['uploadId']}/1", params={"key": "k"}),
            anonymous.get(f"{BASE}/multipart/{upload['uploadId']}", params={"key": "k"}),
            anonymous.post(f"{BASE}/multipart/{upload['uploadId']}/complete?key=k"),
            anonymous.delete(f"{BASE}/multipart/{upload['uploadId']}", params={"key": "k"}),
        ]
    assert [answer.status_code for answer in answers] == [401] * 5
