"""`video-upload upload` and `video-upload videos` against live servers.

The uploader runs as a real subprocess and is killed with SIGKILL mid-upload; run again, it must
find its upload through the fingerprint in the user's data directory, continue from the
server's offset, and end with exactly one completed, byte-identical video. A second set of
tests drives the upload loop in-process through a transport that fails on purpose.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer
from video_upload.client.api import Api
from video_upload.client.commands import parse_size
from video_upload.client.state import UploadRecord, UploadRecords, fingerprint
from video_upload.client.uploader import LocalFile, RetryPolicy, Uploader, sha256_checksum

MIB = 1024 * 1024
CHUNK = "128KiB"


def cli_environment(server: LiveServer, user: User, home: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("JWT_")}
    environment.update(
        VIDEO_UPLOAD_URL=server.base_url,
        VIDEO_UPLOAD_TOKEN=user.token,
        XDG_DATA_HOME=str(home / "xdg"),
        DATA_DIR=str(home / "cli-data"),
    )
    return environment


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "video_upload", *args]


def upload_args(path: Path, session_id: str) -> list[str]:
    """The upload of random bytes: they have no duration to read, so one is declared (these
    servers do not probe)."""
    return command(
        "upload", str(path), "--session", session_id, "--chunk-size", CHUNK, "--duration", "30"
    )


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=240, check=False
    )


def videos(client: httpx.Client, user: User, session_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


def video_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start_and_kill_midway(
    client: httpx.Client, user: User, session_id: str, file: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Start the uploader, SIGKILL it once the server holds some bytes; the upload's record."""
    process = subprocess.Popen(
        upload_args(file, session_id),
        env=env,
        cwd=file.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            listed = videos(client, user, session_id)
            if listed and listed[0]["offset"] > 0:
                break
            time.sleep(0.01)
        finished = process.poll() is not None
        process.kill()  # SIGKILL: no cleanup, no goodbye
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert not finished, f"the uploader ended before it could be killed: {stderr.decode()}"
    (state,) = videos(client, user, session_id)
    assert 0 < state["offset"] < file.stat().st_size, "the kill did not land mid-upload"
    assert not state["upload_completed"]
    return state


def test_killed_upload_resumes_into_one_identical_video(
    server: LiveServer, client: httpx.Client, user: User, session_id: str, tmp_path: Path
) -> None:
    file = video_file(tmp_path / "scales take 1.mp4", 24 * MIB + 12345)
    env = cli_environment(server, user, tmp_path)
    killed_at = start_and_kill_midway(client, user, session_id, file, env)

    again = run(upload_args(file, session_id), env, tmp_path)
    assert again.returncode == 0, again.stderr
    video_id = again.stdout.strip()
    assert "resuming" in again.stderr
    (video,) = videos(client, user, session_id)
    assert video["id"] == video_id == killed_at["id"]
    assert video["status"] == "completed"
    assert video["size"] == file.stat().st_size
    content = client.get(f"/api/v1/videos/{video_id}/content", headers=user.bearer)
    assert content.status_code == 200
    assert sha256(content.content) == sha256(file.read_bytes())

    third = run(upload_args(file, session_id), env, tmp_path)
    assert third.returncode == 0, third.stderr
    assert third.stdout.strip() == video_id
    assert "already uploaded" in third.stderr
    assert len(videos(client, user, session_id)) == 1

    table = run(command("videos", "--session", session_id), env, tmp_path)
    assert table.returncode == 0, table.stderr
    for text in (video_id, "scales take 1.mp4", "completed", "100.0%", "24.0 MiB"):
        assert text in table.stdout
    as_json = run(command("videos", "--session", session_id, "--json"), env, tmp_path)
    assert [item["id"] for item in json.loads(as_json.stdout)] == [video_id]


def test_an_upload_gone_from_the_server_starts_over(
    server: LiveServer, client: httpx.Client, user: User, session_id: str, tmp_path: Path
) -> None:
    file = video_file(tmp_path / "take.webm", 16 * MIB)
    env = cli_environment(server, user, tmp_path)
    killed = start_and_kill_midway(client, user, session_id, file, env)
    aborted = client.delete(f"/api/v1/videos/upload/{killed['upload_id']}", headers=user.bearer)
    assert aborted.status_code == 204

    again = run(upload_args(file, session_id), env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "starting over" in again.stderr
    (video,) = videos(client, user, session_id)
    assert video["id"] == again.stdout.strip() != killed["id"]
    assert video["status"] == "completed"
    content = client.get(f"/api/v1/videos/{video['id']}/content", headers=user.bearer)
    assert sha256(content.content) == sha256(file.read_bytes())


def test_refusals_are_reported_without_a_traceback(
    server: LiveServer, user: User, tmp_path: Path
) -> None:
    file = video_file(tmp_path / "take.mp4", 1000)
    env = cli_environment(server, user, tmp_path)
    unknown = "00000000-0000-0000-0000-000000000000"
    refused = run(upload_args(file, unknown), env, tmp_path)
    assert refused.returncode == 1
    assert "practice session not found" in refused.stderr
    assert "Traceback" not in refused.stderr
    no_token = run(upload_args(file, unknown), {**env, "VIDEO_UPLOAD_TOKEN": ""}, tmp_path)
    assert no_token.returncode == 1
    assert "VIDEO_UPLOAD_TOKEN" in no_token.stderr


# -- the upload loop in-process, through a transport that fails on purpose -----------------


class FlakyTransport(httpx.BaseTransport):
    """Real HTTP, except that some calls fail the ways a mobile network and a busy server do."""

    # PATCH number → what goes wrong with it; every other PATCH (and every HEAD) goes through.
    FAULTS: ClassVar[dict[int, str]] = {
        2: "lost answer",
        3: "503",
        5: "409",
        6: "423",
        8: "lost answer",
        9: "refused",
    }

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests = 0
        self.patches = 0
        self.injected: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        fault = None
        if self.requests == 1:
            fault = "refused"  # the init itself: never sent, so safe to retry
        elif request.method == "PATCH":
            self.patches += 1
            fault = self.FAULTS.get(self.patches)
        if fault is not None:
            self.injected.append(fault)
        if fault == "refused":
            raise httpx.ConnectError("injected: connection refused", request=request)
        if fault == "lost answer":
            response = self.inner.handle_request(request)  # the server applies the chunk…
            response.read()
            response.close()
            raise httpx.ReadError("injected: connection reset", request=request)  # …unheard
        if fault == "503":
            return httpx.Response(503, headers={"Retry-After": "0"}, request=request)
        if fault == "409":
            return httpx.Response(409, text="Upload-Offset does not match\n", request=request)
        if fault == "423":
            return httpx.Response(423, text="locked\n", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_transient_failures_are_retried_with_resync(
    server: LiveServer, client: httpx.Client, user: User, session_id: str, tmp_path: Path
) -> None:
    file = video_file(tmp_path / "take.mov", 3 * MIB + 7)
    transport = FlakyTransport()
    pauses: list[float] = []
    with Api(server.base_url, user.token, transport=transport) as api:
        uploader = Uploader(
            api,
            UploadRecords(tmp_path / "uploads.json"),
            server=server.base_url,
            chunk_size=256 * 1024,
            retry=RetryPolicy(attempts=4, base=0.001, cap=0.01),
            sleep=pauses.append,
        )
        outcome = uploader.upload(LocalFile.of(file), session_id, duration_seconds=42)
    assert {"refused", "lost answer", "503", "409", "423"} <= set(transport.injected)
    assert pauses and max(pauses) <= 0.01
    (video,) = videos(client, user, session_id)
    assert video["id"] == outcome.video_id
    assert video["status"] == "completed"
    assert video["declared_duration_seconds"] == 42
    assert video["content_type"] == "video/quicktime"
    content = client.get(f"/api/v1/videos/{video['id']}/content", headers=user.bearer)
    assert sha256(content.content) == sha256(file.read_bytes())


# -- small parts ---------------------------------------------------------------------------


def test_fingerprint_changes_with_file_session_and_server(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    base = fingerprint(path, 10, 1, "s", "http://h:1")
    assert base == fingerprint(path, 10, 1, "S", "http://h:1/")
    assert base != fingerprint(path, 11, 1, "s", "http://h:1")
    assert base != fingerprint(path, 10, 2, "s", "http://h:1")
    assert base != fingerprint(path, 10, 1, "t", "http://h:1")
    assert base != fingerprint(path, 10, 1, "s", "http://h:2")
    assert base != fingerprint(tmp_path / "b.mp4", 10, 1, "s", "http://h:1")


def test_chunk_checksum_is_sha256_of_exactly_the_range(tmp_path: Path) -> None:
    import base64

    data = os.urandom(200_000)
    path = tmp_path / "f.mp4"
    path.write_bytes(data)
    expected = base64.b64encode(hashlib.sha256(data[1000:150_000]).digest()).decode()
    assert sha256_checksum(path, 1000, 149_000) == f"sha256 {expected}"


def test_chunk_sizes_parse_with_binary_units() -> None:
    assert parse_size("262144") == 262144
    assert parse_size("256KiB") == 256 * 1024
    assert parse_size("5m") == 5 * MIB
    assert parse_size("1 GiB") == 1024 * MIB
    for bad in ("", "0", "five", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)


def test_records_survive_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "uploads.json"
    records = UploadRecords(path)
    assert records.get("missing") is None
    path.write_text("{not json")
    assert records.get("anything") is None


def test_saving_a_record_drops_those_whose_file_is_gone_or_changed(tmp_path: Path) -> None:
    records = UploadRecords(tmp_path / "uploads.json")

    def record_for(name: str) -> tuple[str, UploadRecord]:
        video = tmp_path / name
        if not video.exists():
            video.write_bytes(b"take " + name.encode())
        status = video.stat()
        key = fingerprint(video, status.st_size, status.st_mtime_ns, "s1", "http://server")
        return key, UploadRecord(
            upload_id=name, upload_url=f"http://server/{name}", video_id=name, session_id="s1",
            server="http://server", path=str(video.resolve()), size=status.st_size,
            mtime_ns=status.st_mtime_ns, chunk_size=1024, completed=True,
        )  # fmt: skip

    kept_key, kept = record_for("kept.mp4")
    deleted_key, deleted = record_for("deleted.mp4")
    edited_key, edited = record_for("edited.mp4")
    for key, record in ((kept_key, kept), (deleted_key, deleted), (edited_key, edited)):
        records.put(key, record)
    (tmp_path / "deleted.mp4").unlink()
    (tmp_path / "edited.mp4").write_bytes(b"a longer, re-recorded take")

    new_key, new = record_for("new.mp4")
    records.put(new_key, new)

    assert records.get(kept_key) == kept  # same file, unchanged: still answers a rerun
    assert records.get(new_key) == new
    assert records.get(deleted_key) is None
    assert records.get(edited_key) is None
