"""Completion probes the stored file: a real video gains its real metadata and a thumbnail; a
file that is not one, or is too long, is rejected with 422 and leaves no bytes behind.

The servers here probe (the shared fixtures turn probing off for the transport suites, which
upload random bytes) and allow videos of at most 3 seconds, on every database x store pair
(tests/support/probing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.probing import (
    API,
    Sample,
    complete,
    upload,
)

# fixtures, imported by name for pytest to find them
from tests.support.probing import http as http
from tests.support.probing import owner as owner
from tests.support.probing import probing as probing
from tests.support.probing import samples as samples
from tests.support.s3server import leftover_objects, pending_multipart_uploads
from tests.support.videos import H264, decode_jpeg

VIDEO_CODEC = "h264" if H264 == "libx264" else "mpeg4"


def video_record(http: httpx.Client, user: User, video_id: str) -> dict[str, Any]:
    response = http.get(f"{API}/videos/{video_id}", headers=user.bearer)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def stored_names(server: LiveServer, upload_id: str) -> list[str]:
    """Everything the store holds for the upload: objects, pending multipart uploads, files."""
    settings = server.settings
    if settings.storage_backend == "s3":
        endpoint, bucket = settings.s3_endpoint_url, settings.s3_bucket_name
        prefix = f"{settings.s3_key_prefix}{upload_id}"
        pending = [f"pending:{key}" for key in pending_multipart_uploads(endpoint, bucket, prefix)]
        return sorted(leftover_objects(endpoint, bucket, prefix) + pending)
    root = settings.local_storage_path
    names = (path.relative_to(root).as_posix() for path in root.rglob("*"))
    return sorted(name for name in names if name.startswith(upload_id))


def s3_reads(server: LiveServer) -> int:
    counts = getattr(server.store, "request_counts", {})
    return int(counts.get("GetObject", 0))


@dataclass(frozen=True)
class Expected:
    container: str
    video_codec: str
    audio_codec: str | None
    size: tuple[int, int]


ACCEPTED = {
    "mp4": Expected("mp4", VIDEO_CODEC, "aac", (320, 240)),
    "mov": Expected("mov", "mpeg4", None, (256, 144)),
    "portrait mp4": Expected("mp4", VIDEO_CODEC, "aac", (240, 320)),  # 320x240 frames, turned
}
REJECTED = {
    "text named .mp4": "not_a_video",
    "mp4 cut before its index": "not_a_video",
    "faststart mp4 cut in half": "not_a_video",
    "5 s video declared as 2 s": "video_too_long",
}


# -- real videos ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(ACCEPTED))
def test_a_real_video_completes_with_its_probed_metadata(
    http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample], kind: str
) -> None:
    sample, expected = samples[kind], ACCEPTED[kind]
    sent = upload(http, owner, sample.data, filename=sample.filename, declared=sample.declared)
    done = complete(http, owner[0], sent.upload_id)
    assert done.status_code == 200, done.text
    video = done.json()
    assert video["status"] == "completed"
    assert video["duration_seconds"] == pytest.approx(2.0, abs=0.1)
    assert video["declared_duration_seconds"] == 2.0
    assert video["duration_mismatch"] is False
    assert video["container"] == expected.container
    assert video["video_codec"] == expected.video_codec
    assert video["audio_codec"] == expected.audio_codec
    assert (video["width"], video["height"]) == expected.size
    assert video["frame_rate"] == pytest.approx(25.0, abs=0.01)
    assert video["has_thumbnail"] is True
    assert video["rejection_code"] is None
    assert video_record(http, owner[0], sent.video_id) == video


@pytest.mark.parametrize("kind", list(ACCEPTED))
def test_a_completed_video_has_a_jpeg_thumbnail_stored_beside_it(
    probing: LiveServer,
    http: httpx.Client,
    owner: tuple[User, str],
    samples: dict[str, Sample],
    kind: str,
) -> None:
    sample = samples[kind]
    sent = upload(http, owner, sample.data, filename=sample.filename, declared=sample.declared)
    assert complete(http, owner[0], sent.upload_id).status_code == 200
    thumbnail = http.get(f"{API}/videos/{sent.video_id}/thumbnail", headers=owner[0].bearer)
    assert thumbnail.status_code == 200, thumbnail.text
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert thumbnail.content[:2] == b"\xff\xd8"
    assert decode_jpeg(thumbnail.content) == ACCEPTED[kind].size
    sidecar = f"{sent.upload_id}.sidecar/thumbnail.jpg"
    assert any(name.endswith(sidecar) for name in stored_names(probing, sent.upload_id))


def test_the_session_list_shows_which_videos_have_a_thumbnail(
    http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample]
) -> None:
    user, session_id = owner
    video = upload(http, owner, samples["mp4"].data, filename="a.mp4", declared=2.0)
    assert complete(http, user, video.upload_id).status_code == 200
    unfinished = upload(http, owner, samples["mov"].data, filename="b.mov", declared=2.0)
    listed = http.get(f"{API}/sessions/{session_id}/videos", headers=user.bearer).json()
    flags = {item["upload_id"]: item["has_thumbnail"] for item in listed}
    assert flags == {video.upload_id: True, unfinished.upload_id: False}


def test_a_duration_far_from_the_declared_one_is_recorded_as_a_mismatch(
    http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample]
) -> None:
    sent = upload(http, owner, samples["mp4"].data, filename="take.mp4", declared=0.5)
    done = complete(http, owner[0], sent.upload_id)
    assert done.status_code == 200, done.text
    video = done.json()
    assert video["duration_mismatch"] is True
    assert video["declared_duration_seconds"] == 0.5
    assert video["duration_seconds"] == pytest.approx(2.0, abs=0.1)


def test_completing_a_video_again_returns_the_same_record_without_probing_again(
    probing: LiveServer, http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample]
) -> None:
    sent = upload(http, owner, samples["mp4"].data, filename="take.mp4", declared=2.0)
    first = complete(http, owner[0], sent.upload_id)
    assert first.status_code == 200, first.text
    reads = s3_reads(probing)
    again = complete(http, owner[0], sent.upload_id)
    assert again.status_code == 200
    assert again.json() == first.json()  # updated_at too: the record was not rewritten
    assert s3_reads(probing) == reads  # nothing was read back from S3


# -- files that are not acceptable videos ---------------------------------------------------


@pytest.mark.parametrize("kind", list(REJECTED))
def test_an_unacceptable_file_is_rejected_with_422_and_leaves_no_bytes(
    probing: LiveServer,
    http: httpx.Client,
    owner: tuple[User, str],
    samples: dict[str, Sample],
    kind: str,
) -> None:
    user = owner[0]
    sample = samples[kind]
    sent = upload(http, owner, sample.data, filename=sample.filename, declared=sample.declared)
    assert stored_names(probing, sent.upload_id), "the bytes are stored until completion"
    done = complete(http, user, sent.upload_id)
    assert done.status_code == 422, done.text
    error = done.json()["error"]
    assert error["code"] == REJECTED[kind]
    assert error["message"]
    assert stored_names(probing, sent.upload_id) == []
    video = video_record(http, user, sent.video_id)
    assert video["status"] == "rejected"
    assert (video["rejection_code"], video["rejection_reason"]) == (error["code"], error["message"])
    assert video["has_thumbnail"] is False
    content = http.get(f"{API}/videos/{sent.video_id}/content", headers=user.bearer)
    assert content.status_code == 404


def test_a_video_over_the_limit_keeps_its_real_duration_with_the_rejection(
    http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample]
) -> None:
    sent = upload(
        http, owner, samples["5 s video declared as 2 s"].data, filename="l.mp4", declared=2
    )
    done = complete(http, owner[0], sent.upload_id)
    assert done.status_code == 422
    assert "3 s" in done.json()["error"]["message"]
    video = video_record(http, owner[0], sent.video_id)
    assert video["duration_seconds"] == pytest.approx(5.0, abs=0.1)
    assert video["duration_mismatch"] is True


def test_a_rejected_upload_answers_the_same_422_when_completed_again(
    http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample]
) -> None:
    sample = samples["text named .mp4"]
    sent = upload(http, owner, sample.data, filename=sample.filename, declared=sample.declared)
    first = complete(http, owner[0], sent.upload_id)
    record = video_record(http, owner[0], sent.video_id)
    again = complete(http, owner[0], sent.upload_id)
    assert (first.status_code, again.status_code) == (422, 422)
    assert again.json() == first.json()
    assert video_record(http, owner[0], sent.video_id) == record
