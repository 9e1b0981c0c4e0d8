"""How a direct upload ends other than by completing plainly: aborting and expiry leave no
multipart upload behind (signing a part keeps it alive); with probing on, a real video is probed
like any other, while a non-video, or a video longer than allowed, is refused with 422 and its
object freed.

They run against SeaweedFS's S3, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.direct import PART, Direct, held, pieces, start_direct_server

# fixtures, imported by name for pytest to find them
from tests.support.direct import direct as direct
from tests.support.direct import direct_server as direct_server
from tests.support.live import LiveServer, expired_clock
from tests.support.videos import synthetic_video, text_pretending_to_be_mp4
from video_upload.lifecycle.cleanup import VideoService


@pytest.fixture(scope="module", params=["sqlite-s3", "postgres-s3"])
def probing_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    live = start_direct_server(request, request.param, video_probe=True)
    yield live
    live.stop()


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
