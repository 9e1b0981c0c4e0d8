"""A machine crash that takes away bytes the local store had not yet flushed to disk.

By default the local store leaves a PATCH's bytes in the page cache and flushes an upload when
it finishes (`LOCAL_STORAGE_FSYNC=finish`). A crash of the service keeps those bytes; a crash of
the machine can take the unflushed tail of an unfinished upload away, which leaves the file
shorter than the committed offset. That is simulated here by cutting the file: the service must
then report the bytes the disk still holds, so the client sends the rest again, and the finished
video must be identical to what the client sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import User, make_settings, new_session, new_user
from tests.support.live import LiveServer, start_server
from tests.support.tus import complete_and_read, create_upload, patch_headers, pattern

MIB = 1024 * 1024


@pytest.fixture(scope="module", params=["sqlite-local", "postgres-local"])
def local_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(request, tmp_path_factory.mktemp("crash"), request.param)
    assert settings.local_storage_fsync == "finish"  # the default this module is about
    live = start_server(request.param, settings)
    yield live
    live.stop()


@pytest.fixture
def http(local_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def owner(local_server: LiveServer, http: httpx.Client) -> tuple[User, str]:
    user = new_user(local_server)
    return user, new_session(http, user)


def upload_file(server: LiveServer, url: str) -> Path:
    return server.settings.local_storage_path / url.rsplit("/", 1)[1]


def lose_tail(path: Path, keep: int) -> None:
    """What a machine crash does to bytes that never reached the disk."""
    os.truncate(path, keep)


def start_upload(http: httpx.Client, user: User, session_id: str, data: bytes, sent: int) -> str:
    url = create_upload(http, user.headers, session_id, len(data))
    for offset in range(0, sent, MIB):
        response = http.patch(
            url, headers=patch_headers(user.headers, offset), content=data[offset : offset + MIB]
        )
        assert response.status_code == 204, response.text
    return url


def test_head_after_machine_crash_reports_held_bytes_and_resume_gives_identical_video(
    local_server: LiveServer, http: httpx.Client, owner: tuple[User, str]
) -> None:
    user, session_id = owner
    data = pattern(4 * MIB, seed=11)
    url = start_upload(http, user, session_id, data, sent=3 * MIB)
    held = 3 * MIB // 2
    lose_tail(upload_file(local_server, url), held)

    head = http.head(url, headers=user.headers)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == str(held)

    rest = http.patch(url, headers=patch_headers(user.headers, held), content=data[held:])
    assert rest.status_code == 204, rest.text
    assert rest.headers["Upload-Offset"] == str(len(data))
    assert complete_and_read(http, user.bearer, url) == data


def test_patch_at_offset_lost_in_machine_crash_returns_409_with_held_offset(
    local_server: LiveServer, http: httpx.Client, owner: tuple[User, str]
) -> None:
    user, session_id = owner
    data = pattern(3 * MIB, seed=12)
    url = start_upload(http, user, session_id, data, sent=2 * MIB)
    lose_tail(upload_file(local_server, url), MIB)

    stale = http.patch(url, headers=patch_headers(user.headers, 2 * MIB), content=data[2 * MIB :])
    assert stale.status_code == 409
    assert stale.headers["Upload-Offset"] == str(MIB)
    # nothing was written past the held bytes: the file was not padded to the stale offset
    assert upload_file(local_server, url).stat().st_size == MIB


def test_rest_status_after_machine_crash_reports_held_bytes(
    local_server: LiveServer, http: httpx.Client, owner: tuple[User, str]
) -> None:
    user, session_id = owner
    data = pattern(3 * MIB, seed=13)
    url = start_upload(http, user, session_id, data, sent=2 * MIB)
    lose_tail(upload_file(local_server, url), MIB + 17)
    upload_id = url.rsplit("/", 1)[1]

    status = http.get(f"/api/v1/videos/upload/{upload_id}/status", headers=user.bearer)
    assert status.status_code == 200
    assert status.json()["offset"] == MIB + 17


def test_upload_file_lost_whole_in_machine_crash_restarts_from_zero(
    local_server: LiveServer, http: httpx.Client, owner: tuple[User, str]
) -> None:
    user, session_id = owner
    data = pattern(2 * MIB, seed=14)
    url = start_upload(http, user, session_id, data, sent=MIB)
    upload_file(local_server, url).unlink()  # the file's creation never reached the disk

    assert http.head(url, headers=user.headers).headers["Upload-Offset"] == "0"
    again = http.patch(url, headers=patch_headers(user.headers, 0), content=data)
    assert again.status_code == 204, again.text
    assert complete_and_read(http, user.bearer, url) == data
