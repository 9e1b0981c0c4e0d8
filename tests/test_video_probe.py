"""Completion probes the stored file: a real video gains its real metadata and a thumbnail; a
file that is not one, or is too long, is rejected with 422 and leaves no bytes behind.

The servers here probe (the shared fixtures turn probing off for the transport suites, which
upload random bytes) and allow videos of at most 3 seconds, on every database x store pair.
The last tests drive the probe directly against stores that misbehave.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, User, make_settings, new_user
from tests.support.live import LiveServer, start_server
from tests.support.s3server import leftover_objects, pending_multipart_uploads
from tests.support.tus import patch_headers
from tests.support.videos import (
    H264,
    decode_jpeg,
    huge_y4m_header,
    raw_h264_stream,
    synthetic_video,
    text_pretending_to_be_mp4,
)
from video_upload.media import ProbeLimits, ProbeRejected, examine
from video_upload.media.reader import ReadBudget, StoreReader
from video_upload.persistence.engine import migrate
from video_upload.storage.base import ByteRange, StorageError, StoredUpload, UploadStore

API = "/api/v1"
LIMIT_SECONDS = 3.0
VIDEO_CODEC = "h264" if H264 == "libx264" else "mpeg4"


# -- servers, users, uploads ----------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def probing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    backend: str = request.param
    settings = make_settings(
        request,
        tmp_path_factory.mktemp(f"probe-{backend}"),
        backend,
        video_probe=True,
        max_video_duration_minutes=LIMIT_SECONDS / 60,
    )
    migrate(settings.resolved_database_url)
    live = start_server(f"probe-{backend}", settings)
    yield live
    live.stop()


@pytest.fixture
def http(probing: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=probing.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def owner(probing: LiveServer, http: httpx.Client) -> tuple[User, str]:
    user = new_user(probing)
    session = http.post(f"{API}/sessions", json={"name": "scales"}, headers=user.bearer)
    assert session.status_code == 201, session.text
    return user, str(session.json()["id"])


@dataclass(frozen=True)
class Upload:
    upload_id: str
    video_id: str


def upload(
    http: httpx.Client, owner: tuple[User, str], data: bytes, *, filename: str, declared: float
) -> Upload:
    """Initialise through REST and send every byte through tus (not completed yet)."""
    user, session_id = owner
    init = http.post(
        f"{API}/videos/upload/init",
        json={
            "session_id": session_id,
            "filename": filename,
            "file_size": len(data),
            "duration_seconds": declared,
        },
        headers=user.bearer,
    )
    assert init.status_code == 201, init.text
    body = init.json()
    sent = http.patch(body["upload_url"], headers=patch_headers(user.headers, 0), content=data)
    assert sent.status_code == 204, sent.text
    return Upload(body["upload_id"], body["video_id"])


def complete(http: httpx.Client, user: User, upload_id: str) -> httpx.Response:
    return http.post(
        f"{API}/videos/upload/complete", json={"upload_id": upload_id}, headers=user.bearer
    )


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


# -- the videos -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    data: bytes
    filename: str
    declared: float


@pytest.fixture(scope="module")
def samples() -> dict[str, Sample]:
    faststart = synthetic_video(seconds=2.5, faststart=True)
    indexed_last = synthetic_video(seconds=2.5)
    return {
        "mp4": Sample(synthetic_video(seconds=2.0), "take1.mp4", 2.0),
        "mov": Sample(
            synthetic_video("mov", codec="mpeg4", seconds=2.0, size=(256, 144), audio=False),
            "take2.mov",
            2.0,
        ),
        "portrait mp4": Sample(synthetic_video(seconds=2.0, rotation=-90), "take3.mp4", 2.0),
        "text named .mp4": Sample(text_pretending_to_be_mp4(), "notes.mp4", 2.0),
        "mp4 cut before its index": Sample(indexed_last[: len(indexed_last) // 2], "cut.mp4", 2.5),
        "faststart mp4 cut in half": Sample(faststart[: len(faststart) // 2], "cut.mp4", 2.5),
        "5 s video declared as 2 s": Sample(synthetic_video(seconds=5.0), "long.mp4", 2.0),
    }


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


# -- the thumbnail endpoint -----------------------------------------------------------------


def test_the_thumbnail_is_refused_to_another_user_without_data(
    probing: LiveServer, http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample]
) -> None:
    sent = upload(http, owner, samples["mp4"].data, filename="take.mp4", declared=2.0)
    assert complete(http, owner[0], sent.upload_id).status_code == 200
    stranger = new_user(probing)
    response = http.get(f"{API}/videos/{sent.video_id}/thumbnail", headers=stranger.bearer)
    assert response.status_code in {403, 404}
    assert response.headers["content-type"].startswith("application/json")
    assert b"\xff\xd8" not in response.content[:2]


def test_a_video_without_a_thumbnail_answers_404_json(
    http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample]
) -> None:
    user = owner[0]
    unfinished = upload(http, owner, samples["mp4"].data, filename="take.mp4", declared=2.0)
    rejected = upload(http, owner, samples["text named .mp4"].data, filename="n.mp4", declared=2)
    assert complete(http, user, rejected.upload_id).status_code == 422
    for video_id in (unfinished.video_id, rejected.video_id):
        response = http.get(f"{API}/videos/{video_id}/thumbnail", headers=user.bearer)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "thumbnail_not_found"


@pytest.mark.any_backend("probing")
def test_openapi_documents_the_thumbnail_and_the_probed_fields(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    operation = document["paths"][f"{API}/videos/{{video_id}}/thumbnail"]["get"]
    assert "image/jpeg" in operation["responses"]["200"]["content"]
    fields = document["components"]["schemas"]["VideoOut"]["properties"]
    assert {"duration_seconds", "container", "video_codec", "audio_codec", "has_thumbnail"} <= set(
        fields
    )


# -- the probe against misbehaving stores and hostile files ---------------------------------


class MemoryStore:
    """Just enough of a store to be read: one object in memory, ranges in small chunks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.ranges: list[ByteRange] = []

    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        self.ranges.append(byte_range)
        for start in range(byte_range.start, byte_range.end + 1, 4096):
            yield self.data[start : min(start + 4096, byte_range.end + 1)]


class SilentStore(MemoryStore):
    """A store that is asked for bytes and never answers."""

    def __init__(self) -> None:
        super().__init__(b"")
        self.asked = asyncio.Event()

    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        self.asked.set()
        await asyncio.Event().wait()
        yield b""


class SlowStore(MemoryStore):
    """A store that takes `delay` seconds before answering each read."""

    def __init__(self, data: bytes, delay: float) -> None:
        super().__init__(data)
        self.delay = delay

    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        await asyncio.sleep(self.delay)  # the store's latency, not a stand-in for waiting on it
        async for chunk in super().read(upload, byte_range):
            yield chunk


class BrokenStore(MemoryStore):
    async def read(self, upload: StoredUpload, byte_range: ByteRange) -> AsyncIterator[bytes]:
        raise StorageError("S3 GetObject failed: 503 SlowDown")
        yield b""


async def probe_bytes(data: bytes, limits: ProbeLimits | None = None) -> ProbeRejected:
    store: Any = MemoryStore(data)
    with pytest.raises(ProbeRejected) as rejected:
        await examine(store, StoredUpload("key", len(data)), len(data), limits)
    return rejected.value


async def test_the_reader_serves_any_seek_from_ranged_reads_with_a_bounded_cache() -> None:
    data = random.Random(5).randbytes(3 * 1024 * 1024 + 17)
    store = MemoryStore(data)
    block, cache = 256 * 1024, 512 * 1024

    async def fetch(byte_range: ByteRange) -> bytes:
        return b"".join([chunk async for chunk in store.read(StoredUpload("k", 0), byte_range)])

    budget = ReadBudget(seconds=20, max_bytes=64 * 1024 * 1024)
    reader = StoreReader(
        asyncio.get_running_loop(), fetch, len(data), budget, block_size=block, cache_bytes=cache
    )
    positions = [*random.Random(6).sample(range(len(data)), 200), len(data) - 3]

    def read_at_positions() -> list[tuple[int, bytes, int]]:
        budget.start()
        return [
            (p, reader.read(1000), reader.cached_bytes) for p in positions if reader.seek(p) >= 0
        ]

    for position, chunk, cached in await asyncio.to_thread(read_at_positions):
        assert chunk and data.startswith(chunk, position)
        assert cached <= cache
    assert reader.read(10) == b""  # at the end
    assert reader.seek(0, 2) == len(data)
    assert all(piece.length <= block for piece in store.ranges)


async def test_a_store_that_never_answers_is_a_storage_failure_not_a_verdict() -> None:
    """A verdict deletes the upload: a stalled store must leave it for a retry instead."""
    store = SilentStore()
    started = time.monotonic()
    limits = ProbeLimits(seconds=20, store_wait_seconds=0.5)
    probing = asyncio.ensure_future(
        examine(store, StoredUpload("key", 10**6), 10**6, limits)  # type: ignore[arg-type]
    )
    await asyncio.wait_for(store.asked.wait(), 5)  # the loop ran the fetch: it was not blocked
    with pytest.raises(StorageError) as failed:
        await probing
    assert failed.value.retryable
    assert "0.5 seconds" in str(failed.value)
    assert time.monotonic() - started < 5


async def test_waiting_for_a_slow_store_does_not_count_against_the_time_budget() -> None:
    data = synthetic_video(seconds=2.0, size=(640, 480))
    store = SlowStore(data, delay=0.8)
    limits = ProbeLimits(seconds=0.5)  # less than a single wait for the store
    facts = await examine(store, StoredUpload("key", len(data)), len(data), limits)  # type: ignore[arg-type]
    assert facts.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert len(store.ranges) * store.delay > limits.seconds  # the store really was that slow


async def test_a_file_needing_more_bytes_than_the_budget_is_given_up() -> None:
    data = synthetic_video(seconds=2.0, size=(640, 480))
    rejected = await probe_bytes(data, ProbeLimits(max_read_bytes=len(data) // 4))
    assert rejected.code == "probe_failed"
    assert "bytes" in rejected.reason


async def test_an_absurd_picture_size_is_refused_before_decoding() -> None:
    rejected = await probe_bytes(huge_y4m_header(12000, 9000))
    assert rejected.code == "probe_failed"
    assert "12000x9000" in rejected.reason and "8192" in rejected.reason


async def test_a_stream_without_a_known_duration_is_refused() -> None:
    rejected = await probe_bytes(raw_h264_stream())
    assert rejected.code == "probe_failed"
    assert "duration" in rejected.reason


async def test_a_still_image_is_not_a_video() -> None:
    store: Any = MemoryStore(synthetic_video())
    facts = await examine(store, StoredUpload("key", len(store.data)), len(store.data))
    assert facts.thumbnail is not None
    rejected = await probe_bytes(facts.thumbnail)
    assert rejected.code == "not_a_video"


async def test_a_store_failure_during_the_probe_is_not_a_verdict_on_the_file() -> None:
    store: UploadStore = BrokenStore(b"")  # type: ignore[assignment]
    with pytest.raises(StorageError):
        await examine(store, StoredUpload("key", 1000), 1000)
