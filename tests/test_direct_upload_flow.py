"""Direct uploads to S3 through presigned part URLs (`/api/v1/videos/direct/s3/multipart`,
Uppy Companion's routes), against SeaweedFS, on SQLite and PostgreSQL: the whole flow, and
nothing beyond what was declared; without S3 there are none.

The parts are PUT with plain HTTP to the URLs the service signs, as a browser or a phone would:
the service never sees their bytes. An upload interrupted after some parts resumes from the
parts S3 lists; completing it is checked by the service (its total must be the declared size)
and gives the same video record as a tus upload, read back byte-identical. The URLs handed out
are signed for S3_PUBLIC_ENDPOINT_URL when it is set.
"""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from tests.support.direct import MIB, PART, Direct, held, pieces, start_direct_server

# fixtures, imported by name for pytest to find them
from tests.support.direct import direct as direct
from tests.support.direct import direct_server as direct_server
from tests.support.live import LiveServer

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


# -- local storage ------------------------------------------------------------------------------


def test_direct_uploads_need_s3(request: pytest.FixtureRequest) -> None:
    server = start_direct_server(request, "sqlite-local")
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
    server = start_direct_server(request, "sqlite-s3", s3_public_endpoint_url=public)
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
