"""Servers that probe what they store, on each back end, and their users, uploads and samples."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import BACKENDS, User, make_settings, new_session, new_user
from tests.support.live import LiveServer, start_server
from tests.support.tus import patch_headers
from tests.support.videos import synthetic_video, text_pretending_to_be_mp4

API = "/api/v1"
LIMIT_SECONDS = 3.0

# A test module imports the fixtures by name (`from ... import probing as probing`, ...) for
# pytest to find them; the modules that do share the servers and the samples.


@pytest.fixture(scope="session", params=BACKENDS)
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
    return user, new_session(http, user)


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


@dataclass(frozen=True)
class Sample:
    data: bytes
    filename: str
    declared: float


@pytest.fixture(scope="session")
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
