"""`video-upload upload` declares the file's real duration, read with PyAV, unless told one.

The `probing` server here probes every completed upload (the shared fixtures turn probing off)
and compares the declared duration with the one it finds. A file whose duration cannot be read
is refused before anything is sent, asking for `--duration`; with it, the server gives its
verdict. A resumed upload needs no duration at all: the server has it since the first run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import User, make_settings
from tests.support.live import LiveServer, start_server

# fixtures, imported by name for pytest to find them (on this module's `probing` server)
from tests.support.probing import http as http
from tests.support.probing import owner as owner
from tests.support.videos import (
    H264,
    raw_h264_stream,
    synthetic_video,
    text_pretending_to_be_mp4,
)
from video_upload.client.api import Api
from video_upload.client.media import DurationUnknown, guess_type, read_duration
from video_upload.client.state import UploadRecords
from video_upload.client.uploader import LocalFile, Uploader


@pytest.fixture(scope="module")
def probing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One backend: what the client declares does not depend on where the bytes go. (The
    `http` and `owner` fixtures, imported below, run on this server: pytest finds `probing`
    by name, here first.)"""
    settings = make_settings(
        request, tmp_path_factory.mktemp("cli-probe"), "sqlite-local", video_probe=True
    )
    live = start_server("cli-probe", settings)
    yield live
    live.stop()


def upload(
    server: LiveServer, user: User, file: Path, session_id: str, *options: str
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("JWT_")}
    environment.update(
        VIDEO_UPLOAD_URL=server.base_url,
        VIDEO_UPLOAD_TOKEN=user.token,
        XDG_DATA_HOME=str(file.parent / "xdg"),
        DATA_DIR=str(file.parent / "cli-data"),
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "video_upload",
            "upload",
            str(file),
            "--session",
            session_id,
            *options,
        ],
        env=environment,
        cwd=file.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def session_videos(http: httpx.Client, user: User, session_id: str) -> list[dict[str, Any]]:
    response = http.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


@pytest.mark.parametrize(
    ("name", "container", "codec", "audio"),
    [("take.mp4", "mp4", H264, True), ("take.webm", "webm", "libvpx", False)],
)
def test_upload_declares_the_duration_it_reads_from_the_video(
    probing: LiveServer,
    http: httpx.Client,
    owner: tuple[User, str],
    tmp_path: Path,
    name: str,
    container: str,
    codec: str,
    audio: bool,
) -> None:
    user, session_id = owner
    file = tmp_path / name
    file.write_bytes(synthetic_video(container, codec=codec, seconds=6.0, fps=10, audio=audio))

    done = upload(probing, user, file, session_id)
    assert done.returncode == 0, done.stderr
    (video,) = session_videos(http, user, session_id)
    assert video["id"] == done.stdout.strip()
    assert video["status"] == "completed"
    assert video["declared_duration_seconds"] == pytest.approx(6.0, abs=0.1)
    assert video["duration_mismatch"] is False


def test_a_declared_duration_is_sent_as_given(
    probing: LiveServer, http: httpx.Client, owner: tuple[User, str], tmp_path: Path
) -> None:
    user, session_id = owner
    file = tmp_path / "take.mp4"
    file.write_bytes(synthetic_video(seconds=6.0, fps=10))
    done = upload(probing, user, file, session_id, "--duration", "60")
    assert done.returncode == 0, done.stderr
    (video,) = session_videos(http, user, session_id)
    assert video["declared_duration_seconds"] == 60
    assert video["duration_mismatch"] is True


def test_a_file_without_a_readable_duration_is_refused_before_sending_anything(
    probing: LiveServer, http: httpx.Client, owner: tuple[User, str], tmp_path: Path
) -> None:
    user, session_id = owner
    notes = tmp_path / "notes.mp4"
    notes.write_bytes(text_pretending_to_be_mp4())
    refused = upload(probing, user, notes, session_id)
    assert refused.returncode == 1
    assert "cannot tell how long notes.mp4 is" in refused.stderr
    assert "--duration" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout == ""
    assert session_videos(http, user, session_id) == []

    # Declared anyway: the upload goes through, and the server's probe has the last word.
    declared = upload(probing, user, notes, session_id, "--duration", "10")
    assert declared.returncode == 1
    assert "422" in declared.stderr
    assert "not a video" in declared.stderr
    (video,) = session_videos(http, user, session_id)
    assert video["status"] == "rejected"


class InterruptedAfter(httpx.BaseTransport):
    """Real HTTP until `patches` PATCHes went through; then Ctrl-C."""

    def __init__(self, patches: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.patches = patches

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            if self.patches == 0:
                raise KeyboardInterrupt
            self.patches -= 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("server", ["sqlite-local"], indirect=True)
def test_resuming_needs_no_duration_since_the_server_has_it_already(
    server: LiveServer, client: httpx.Client, user: User, session_id: str, tmp_path: Path
) -> None:
    """Random bytes (this server does not probe): declared on the first run, not on the rerun."""
    file = tmp_path / "take.mp4"
    file.write_bytes(os.urandom(512 * 1024))
    records = UploadRecords(tmp_path / "uploads.json")
    with Api(server.base_url, user.token, transport=InterruptedAfter(2)) as api:
        first = Uploader(api, records, server=server.base_url, chunk_size=64 * 1024)
        with pytest.raises(KeyboardInterrupt):
            first.upload(LocalFile.of(file), session_id, duration_seconds=30)

    with Api(server.base_url, user.token) as api:
        again = Uploader(api, records, server=server.base_url, chunk_size=64 * 1024)
        outcome = again.upload(LocalFile.of(file), session_id)  # no duration, none readable
    assert outcome.resumed_from == 128 * 1024
    (video,) = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer).json()
    assert video["status"] == "completed"
    assert video["declared_duration_seconds"] == 30


def test_duration_is_read_from_the_container_or_refused_with_the_reason(tmp_path: Path) -> None:
    video = tmp_path / "take.mov"
    video.write_bytes(synthetic_video("mov", seconds=3.0, fps=10))
    assert read_duration(video) == pytest.approx(3.0, abs=0.1)

    raw = tmp_path / "take.h264"
    raw.write_bytes(raw_h264_stream(seconds=1.0))  # frames without a container: no end known
    with pytest.raises(DurationUnknown, match="does not say how long"):
        read_duration(raw)
    text = tmp_path / "notes.txt"
    text.write_text("Scales in C, then arpeggios.\n" * 40)  # FFmpeg opens text as "tty"
    with pytest.raises(DurationUnknown, match="not as a video"):
        read_duration(text)
    noise = tmp_path / "noise.mkv"
    noise.write_bytes(os.urandom(100_000))
    with pytest.raises(DurationUnknown, match="FFmpeg cannot read it"):
        read_duration(noise)


def test_content_type_is_guessed_from_the_name_video_types_first() -> None:
    assert guess_type("Take 1.MOV") == "video/quicktime"
    assert guess_type("take.mkv") == "video/x-matroska"
    assert guess_type("take.webm") == "video/webm"
    assert guess_type("take.m4v") == "video/x-m4v"
    assert guess_type("take.3gp") == "video/3gpp"
    assert guess_type("take.mp4") == "video/mp4"
    assert guess_type("take.avi") in {"video/x-msvideo", "video/avi"}
    assert guess_type("notes") is None
