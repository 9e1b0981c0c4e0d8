"""Direct uploads to S3 through presigned part URLs (`/api/v1/videos/direct/s3/multipart`,
Uppy Companion's routes), against SeaweedFS, on SQLite and PostgreSQL.

The parts are PUT with plain HTTP to the URLs the service signs, as a browser or a phone would:
the service never sees their bytes. An upload interrupted after some parts resumes from the
parts S3 lists; completing it is checked by the service (its total must be the declared size)
and gives the same video record as a tus upload, read back byte-identical. Other users reach
none of it; aborting and expiry leave no multipart upload behind; a non-video is refused with
422 and its object freed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import User, make_settings, new_user
from tests.support.live import LiveServer, expired_clock, start_server
from tests.support.s3server import leftover_objects, pending_multipart_uploads
from tests.support.tus import patch_headers
from tests.support.videos import synthetic_video, text_pretending_to_be_mp4
from video_upload.lifecycle.cleanup import VideoService
from video_upload.persistence.engine import migrate

MIB = 1024 * 1024
BASE = "/api/v1/videos/direct/s3"
PART = 5 * MIB  # the default S3_PART_SIZE


def _start(request: pytest.FixtureRequest, backend: str, **overrides: Any) -> LiveServer:
    base = request.getfixturevalue("tmp_path_factory").mktemp(f"direct-{backend}")
    settings = make_settings(request, base, backend, **overrides)
    migrate(settings.resolved_database_url)
    return start_server(f"direct-{backend}", settings)


@pytest.fixture(scope="module", params=["sqlite-s3", "postgres-s3"])
def direct_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Probing off: the transport is tested with random bytes, many MiB of them."""
    live = _start(request, request.param)
    yield live
    live.stop()


@pytest.fixture(scope="module", params=["sqlite-s3", "postgres-s3"])
def probing_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    live = _start(request, request.param, video_probe=True)
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
        response = self.http.post("/api/v1/sessions", json={"name": "direct"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

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


# -- the whole flow ------------------------------------------------------------------------------


def test_an_interrupted_direct_upload_resumes_from_the_parts_s3_lists_and_reads_back_identical(
    direct: Direct, direct_server: LiveServer
) -> None:
    data = os.urandom(12 * MIB + 12345)
    session_id = direct.session()
    upload = direct.start(len(data), session_id=session_id)
    assert upload["partSize"] == PART and upload["partCount"] == 3
    assert upload["key"] == direct_server.settings.s3_key_prefix + upload["uploadId"]
    first, second, third = pieces(data)

    etags = {1: direct.put_part(upload, 1, first), 2: direct.put_part(upload, 2, second)}
    # the client goes away; back, it asks what S3 holds and sends the rest
    listed = direct.parts(upload)
    assert listed.status_code == 200, listed.text
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed.json()] == [
        (1, PART, etags[1]),
        (2, PART, etags[2]),
    ]
    status = direct.http.get(f"/api/v1/videos/upload/{upload['uploadId']}/status").json()
    assert (status["status"], status["completed"]) == ("uploading", False)
    etags[3] = direct.put_part(upload, 3, third)

    claimed = [{"PartNumber": n, "ETag": etag} for n, etag in etags.items()]
    completed = direct.complete(upload, claimed)

    assert completed.status_code == 200, completed.text
    body = completed.json()
    assert body["videoId"] == upload["videoId"] == body["video"]["id"]
    assert body["location"] == f"{direct_server.base_url}/api/v1/videos/{upload['videoId']}"
    assert body["video"]["status"] == "completed" and body["video"]["size"] == len(data)
    content = direct.http.get(f"/api/v1/videos/{upload['videoId']}/content")
    assert content.status_code == 200
    assert hashlib.sha256(content.content).digest() == hashlib.sha256(data).digest()
    assert held(direct_server, upload) == ([upload["key"]], [])
    listing = direct.http.get(f"/api/v1/sessions/{session_id}/videos").json()
    assert [(v["id"], v["status"], v["size"]) for v in listing] == [
        (upload["videoId"], "completed", len(data))
    ]
    # completing again gives the same video; the parts can no longer be signed or listed
    again = direct.complete(upload, claimed)
    assert again.status_code == 200 and again.json()["video"] == body["video"]
    assert direct.sign(upload, 1).json()["error"]["code"] == "upload_already_completed"


def test_complete_lists_the_parts_itself_when_the_client_names_none(direct: Direct) -> None:
    data = os.urandom(PART + 10)
    upload = direct.start(len(data))
    for number, piece in enumerate(pieces(data), start=1):
        direct.put_part(upload, number, piece)

    completed = direct.complete(upload, [])

    assert completed.status_code == 200, completed.text
    content = direct.http.get(f"/api/v1/videos/{upload['videoId']}/content")
    assert content.content == data


def test_a_small_file_is_one_part(direct: Direct) -> None:
    data = os.urandom(1000)
    upload = direct.start(len(data))
    assert upload["partCount"] == 1
    etag = direct.put_part(upload, 1, data)

    completed = direct.complete(upload, [{"PartNumber": 1, "ETag": etag}])

    assert completed.status_code == 200, completed.text
    assert completed.json()["video"]["size"] == 1000


# -- nothing beyond what was declared ---------------------------------------------------------


def test_part_numbers_beyond_the_declared_size_are_refused(direct: Direct) -> None:
    upload = direct.start(2 * PART + 1)  # parts 1, 2 and 3

    for number in (0, 4, 10_001):
        refused = direct.sign(upload, number)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "invalid_part_number"
        assert refused.json()["message"]  # what Uppy shows
    assert direct.sign(upload, 3).json()["size"] == 1


def test_a_signed_part_takes_exactly_its_length(direct: Direct) -> None:
    upload = direct.start(PART + 100)
    url = direct.sign(upload, 2).json()["url"]

    assert httpx.put(url, content=os.urandom(101)).status_code == 403
    assert httpx.put(url, content=os.urandom(99)).status_code == 403
    assert httpx.put(url, content=os.urandom(100)).status_code == 200


def test_completing_with_parts_missing_is_refused_and_completes_nothing(
    direct: Direct, direct_server: LiveServer
) -> None:
    data = os.urandom(2 * PART + 5)
    upload = direct.start(len(data))
    direct.put_part(upload, 1, pieces(data)[0])
    direct.put_part(upload, 3, pieces(data)[2])

    refused = direct.complete(upload, [])

    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "parts_incomplete"
    assert error["details"]["missing"] == [2]
    assert error["details"]["held"] == PART + 5
    assert held(direct_server, upload) == ([], [upload["key"]])
    status = direct.http.get(f"/api/v1/videos/upload/{upload['uploadId']}/status").json()
    assert status["completed"] is False
    # the missing part arrives: now it completes
    direct.put_part(upload, 2, pieces(data)[1])
    assert direct.complete(upload, []).status_code == 200


def test_an_etag_s3_does_not_hold_is_refused(direct: Direct) -> None:
    upload = direct.start(100)
    direct.put_part(upload, 1, os.urandom(100))

    refused = direct.complete(upload, [{"PartNumber": 1, "ETag": '"0123456789abcdef"'}])

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "part_mismatch"


def test_a_part_sent_twice_completes_with_the_version_the_client_names(direct: Direct) -> None:
    upload = direct.start(100)
    first, second = os.urandom(100), os.urandom(100)
    first_etag = direct.put_part(upload, 1, first)
    direct.put_part(upload, 1, second)

    completed = direct.complete(upload, [{"PartNumber": 1, "ETag": first_etag}])

    assert completed.status_code == 200, completed.text
    assert direct.http.get(f"/api/v1/videos/{upload['videoId']}/content").content == first


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


# -- abort and expiry ---------------------------------------------------------------------------


def test_abort_leaves_no_pending_multipart_upload(
    direct: Direct, direct_server: LiveServer
) -> None:
    upload = direct.start(PART + 1)
    direct.put_part(upload, 1, os.urandom(PART))
    assert held(direct_server, upload) == ([], [upload["key"]])

    aborted = direct.abort(upload)

    assert aborted.status_code == 200 and aborted.json() == {}
    assert held(direct_server, upload) == ([], [])
    status = direct.http.get(f"/api/v1/videos/upload/{upload['uploadId']}/status")
    assert status.status_code == 404


def test_an_abandoned_direct_upload_is_aborted_by_cleanup(
    direct: Direct, direct_server: LiveServer
) -> None:
    upload = direct.start(PART + 1)
    direct.put_part(upload, 1, os.urandom(PART))

    with expired_clock(direct_server):
        report = direct_server.run(VideoService(direct_server.services).cleanup())

    assert upload["uploadId"] in report.expired_ids
    assert held(direct_server, upload) == ([], [])
    for answer in (direct.sign(upload, 2), direct.parts(upload), direct.complete(upload, [])):
        assert answer.status_code == 410, answer.text
    video = direct.http.get(f"/api/v1/videos/{upload['videoId']}").json()
    assert video["status"] == "expired"


def test_signing_a_part_keeps_the_upload_alive(direct: Direct, direct_server: LiveServer) -> None:
    upload = direct.start(PART + 1)
    hours = direct_server.settings.upload_expiration_hours * 0.75
    direct_server.clock.advance(hours=hours)
    try:
        direct.put_part(upload, 1, os.urandom(PART))  # activity: the expiry moves on
        direct_server.clock.advance(hours=hours)
        try:
            report = direct_server.run(VideoService(direct_server.services).cleanup())
        finally:
            direct_server.clock.advance(hours=-hours)
    finally:
        direct_server.clock.advance(hours=-hours)

    assert upload["uploadId"] not in report.expired_ids
    assert held(direct_server, upload) == ([], [upload["key"]])


# -- probing ------------------------------------------------------------------------------------


def test_a_real_video_uploaded_directly_is_probed_like_any_other(
    probing_server: LiveServer,
) -> None:
    video = synthetic_video(seconds=2.0)
    client = Direct(probing_server)
    try:
        upload = client.start(len(video), duration=2)
        etag = client.put_part(upload, 1, video)
        completed = client.complete(upload, [{"PartNumber": 1, "ETag": etag}])
        assert completed.status_code == 200, completed.text
        record = completed.json()["video"]
        assert record["status"] == "completed"
        assert record["duration_seconds"] == pytest.approx(2.0, abs=0.2)
        assert record["container"] and record["video_codec"] and record["has_thumbnail"]
        thumbnail = client.http.get(f"/api/v1/videos/{upload['videoId']}/thumbnail")
        assert thumbnail.status_code == 200
        assert thumbnail.headers["content-type"] == "image/jpeg"
    finally:
        client.close()


def test_a_non_video_is_rejected_with_422_and_its_object_freed(
    probing_server: LiveServer,
) -> None:
    data = text_pretending_to_be_mp4()
    client = Direct(probing_server)
    try:
        upload = client.start(len(data))
        etag = client.put_part(upload, 1, data)

        refused = client.complete(upload, [{"PartNumber": 1, "ETag": etag}])

        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "not_a_video"
        assert refused.json()["message"]
        assert held(probing_server, upload) == ([], [])
        video = client.http.get(f"/api/v1/videos/{upload['videoId']}").json()
        assert (video["status"], video["rejection_code"]) == ("rejected", "not_a_video")
        assert client.complete(upload, []).status_code == 422  # the same answer again
    finally:
        client.close()


def test_a_video_longer_than_allowed_is_rejected(probing_server: LiveServer) -> None:
    limit = probing_server.settings.max_duration_seconds
    assert limit >= 2
    client = Direct(probing_server)
    try:
        # declared within the limit, the real video is far longer than the limit allows
        video = synthetic_video(seconds=limit + 5, fps=2, size=(64, 48), audio=False)
        upload = client.start(len(video), duration=1)
        parts = [
            {"PartNumber": number, "ETag": client.put_part(upload, number, piece)}
            for number, piece in enumerate(pieces(video), start=1)
        ]

        refused = client.complete(upload, parts)

        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "video_too_long"
        assert held(probing_server, upload) == ([], [])
    finally:
        client.close()


# -- local storage ------------------------------------------------------------------------------


def test_direct_uploads_need_s3(request: pytest.FixtureRequest) -> None:
    server = _start(request, "sqlite-local")
    try:
        client = Direct(server)
        try:
            answers = [
                client.create(100),
                client.sign({"uploadId": "abc", "key": "k"}, 1),
                client.parts({"uploadId": "abc", "key": "k"}),
                client.complete({"uploadId": "abc", "key": "k"}, []),
                client.abort({"uploadId": "abc", "key": "k"}),
            ]
        finally:
            client.close()
    finally:
        server.stop()

    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "direct_uploads_unavailable"


def test_part_and_playback_urls_are_signed_for_the_public_s3_endpoint_and_work_there(
    request: pytest.FixtureRequest, s3_endpoint: str
) -> None:
    """With S3_PUBLIC_ENDPOINT_URL the service talks to S3 at S3_ENDPOINT_URL and hands out URLs
    for the public one (here another name of the same server): they carry its host, and S3
    accepts their signatures there."""
    public = s3_endpoint.replace("127.0.0.1", "localhost")
    assert public != s3_endpoint
    server = _start(request, "sqlite-s3", s3_public_endpoint_url=public)
    direct = Direct(server)
    try:
        data = os.urandom(1000)
        upload = direct.start(len(data))
        signed = direct.sign(upload, 1)
        etag = direct.put_part(upload, 1, data)
        completed = direct.complete(upload, [{"PartNumber": 1, "ETag": etag}])
        assert completed.status_code == 200, completed.text
        video_id = completed.json()["video"]["id"]
        playback = direct.http.get(f"/api/v1/videos/{video_id}/playback")
        assert playback.status_code == 200, playback.text
        played = httpx.get(playback.json()["url"], timeout=30)
    finally:
        direct.close()
        server.stop()
    assert signed.json()["url"].startswith(f"{public}/")
    assert playback.json()["url"].startswith(f"{public}/")
    assert played.status_code == 200
    assert played.content == data
