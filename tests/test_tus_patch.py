"""tus PATCH: offsets, lengths, content types, checksums and exact bytes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import User, make_settings, new_user
from tests.support.live import LiveServer, start_server
from tests.support.tus import (
    TUS_PATH,
    checksum,
    complete_and_read,
    create_upload,
    metadata,
    patch_headers,
    pattern,
)
from video_upload.config import Settings
from video_upload.storage.base import StagingArea, UploadStore
from video_upload.storage.local import LocalStore


def test_patch_appends_bytes_and_returns_new_offset(
    client: httpx.Client, user: User, session_id: str
) -> None:
    data = pattern(3000)
    url = create_upload(client, user.headers, session_id, len(data))
    first = client.patch(url, headers=patch_headers(user.headers, 0), content=data[:1000])
    assert first.status_code == 204
    assert first.headers["Upload-Offset"] == "1000"
    assert first.headers["Upload-Expires"].endswith("GMT")
    second = client.patch(url, headers=patch_headers(user.headers, 1000), content=data[1000:])
    assert second.status_code == 204
    assert second.headers["Upload-Offset"] == "3000"
    assert complete_and_read(client, user.bearer, url) == data


def test_patch_with_wrong_offset_returns_409_with_current_offset(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 100)
    client.patch(url, headers=patch_headers(user.headers, 0), content=b"x" * 10)
    response = client.patch(url, headers=patch_headers(user.headers, 5), content=b"y" * 10)
    assert response.status_code == 409
    assert response.headers["Upload-Offset"] == "10"
    assert client.head(url, headers=user.headers).headers["Upload-Offset"] == "10"


@pytest.mark.any_backend
@pytest.mark.parametrize("offset", [None, "-1", "ten", "1e3", ""])
def test_patch_with_missing_or_invalid_offset_returns_400(
    client: httpx.Client, user: User, session_id: str, offset: str | None
) -> None:
    url = create_upload(client, user.headers, session_id, 100)
    headers = patch_headers(user.headers, 0)
    if offset is None:
        del headers["Upload-Offset"]
    else:
        headers["Upload-Offset"] = offset
    assert client.patch(url, headers=headers, content=b"abc").status_code == 400


def test_patch_with_wrong_content_type_returns_415(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 100)
    headers = {**patch_headers(user.headers, 0), "Content-Type": "application/octet-stream"}
    assert client.patch(url, headers=headers, content=b"abc").status_code == 415
    assert client.head(url, headers=user.headers).headers["Upload-Offset"] == "0"


def test_patch_past_upload_length_returns_413_and_stores_nothing_of_it(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 10)
    response = client.patch(url, headers=patch_headers(user.headers, 0), content=b"z" * 11)
    assert response.status_code == 413
    assert client.head(url, headers=user.headers).headers["Upload-Offset"] == "0"


def test_chunked_patch_past_upload_length_returns_413_and_stores_nothing_of_it(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 10)

    def body() -> Iterator[bytes]:
        yield b"z" * 6
        yield b"z" * 6

    response = client.patch(url, headers=patch_headers(user.headers, 0), content=body())
    assert response.status_code == 413
    assert client.head(url, headers=user.headers).headers["Upload-Offset"] == "0"
    ok = client.patch(url, headers=patch_headers(user.headers, 0), content=b"a" * 10)
    assert ok.status_code == 204


def test_patch_with_matching_checksum_is_accepted(
    client: httpx.Client, user: User, session_id: str
) -> None:
    data = pattern(5000, seed=3)
    url = create_upload(client, user.headers, session_id, len(data))
    for algorithm in ("sha1", "md5", "sha256"):
        start = {"sha1": 0, "md5": 1000, "sha256": 2000}[algorithm]
        part = data[start : start + 1000]
        headers = patch_headers(
            user.headers, start, **{"Upload-Checksum": checksum(algorithm, part)}
        )
        response = client.patch(url, headers=headers, content=part)
        assert response.status_code == 204, (algorithm, response.text)
    client.patch(url, headers=patch_headers(user.headers, 3000), content=data[3000:])
    assert complete_and_read(client, user.bearer, url) == data


def test_patch_with_checksum_mismatch_returns_460_and_discards_the_chunk(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 20)
    client.patch(url, headers=patch_headers(user.headers, 0), content=b"0123456789")
    bad = patch_headers(user.headers, 10, **{"Upload-Checksum": checksum("sha1", b"other")})
    response = client.patch(url, headers=bad, content=b"abcdefghij")
    assert response.status_code == 460
    assert client.head(url, headers=user.headers).headers["Upload-Offset"] == "10"
    client.patch(url, headers=patch_headers(user.headers, 10), content=b"ABCDEFGHIJ")
    assert complete_and_read(client, user.bearer, url) == b"0123456789ABCDEFGHIJ"


@pytest.mark.any_backend
def test_patch_with_unknown_checksum_algorithm_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 3)
    headers = patch_headers(user.headers, 0, **{"Upload-Checksum": "crc32 AAAAAA=="})
    assert client.patch(url, headers=headers, content=b"abc").status_code == 400


@pytest.mark.any_backend
def test_patch_with_undecodable_checksum_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 3)
    headers = patch_headers(user.headers, 0, **{"Upload-Checksum": "sha1 !!!"})
    assert client.patch(url, headers=headers, content=b"abc").status_code == 400


def test_method_override_turns_post_into_patch(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 3)
    headers = patch_headers(user.headers, 0, **{"X-HTTP-Method-Override": "PATCH"})
    response = client.post(url, headers=headers, content=b"abc")
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "3"


def test_patch_after_completion_with_more_bytes_returns_413(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 3)
    client.patch(url, headers=patch_headers(user.headers, 0), content=b"abc")
    response = client.patch(url, headers=patch_headers(user.headers, 3), content=b"d")
    assert response.status_code == 413


def test_many_chunks_of_mixed_sizes_give_identical_bytes(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    sizes = [1, 100 * 1024, 1024 * 1024, 5 * 1024 * 1024, 7 * 1024 * 1024, 1, 333]
    data = pattern(sum(sizes), seed=9)
    url = create_upload(client, user.headers, session_id, len(data))
    offset = 0
    for size in sizes:
        response = client.patch(
            url, headers=patch_headers(user.headers, offset), content=data[offset : offset + size]
        )
        assert response.status_code == 204, response.text
        offset += size
    content = complete_and_read(client, user.bearer, url)
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256(data).hexdigest()


def test_patch_the_disk_cannot_hold_returns_507_and_keeps_what_was_committed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A PATCH whose reservation the local store's disk cannot hold is refused (507, retry
    later) before its body is read; the bytes committed before stay, and HEAD still reports
    them. Only the local store reserves room, so one server: SQLite, local. (The store reserves
    a window of a few MiB past the bytes received; here the window is made larger than the
    disk, as a disk with only a few MiB left would be.)"""
    base = tmp_path_factory.mktemp("full-disk")
    settings = make_settings(request, base, "sqlite-local", max_video_size_mb=10**9)

    async def store_with_a_huge_window(settings: Settings, _: StagingArea) -> UploadStore:
        return LocalStore(settings.local_storage_path, reserve_window=2**62)

    live = start_server("full-disk", settings, store_opener=store_with_a_huge_window)
    try:
        user = new_user(live)
        with httpx.Client(base_url=live.base_url, timeout=30) as http:
            session = http.post("/api/v1/sessions", json={}, headers=user.bearer).json()["id"]
            created = http.post(  # the length deferred: the first PATCH reserves nothing
                TUS_PATH,
                headers={
                    **user.headers,
                    "Upload-Defer-Length": "1",
                    "Upload-Metadata": metadata(session_id=str(session), filename="big.mp4"),
                },
            )
            url = created.headers["Location"]
            first = http.patch(url, headers=patch_headers(user.headers, 0), content=b"a" * 100)
            (base / "uploads").mkdir(exist_ok=True)
            stats = os.statvfs(base / "uploads")
            too_long = stats.f_bavail * stats.f_frsize + 1024**3  # a GiB more than is free
            headers = {**patch_headers(user.headers, 100), "Upload-Length": str(too_long)}
            refused = http.patch(url, headers=headers, content=b"b" * 100)
            head = http.head(url, headers=user.headers)
    finally:
        live.stop()
    assert first.status_code == 204
    assert refused.status_code == 507
    assert refused.headers["Retry-After"] == "60"
    assert "not enough disk space" in refused.text
    assert head.headers["Upload-Offset"] == "100"
    assert "Upload-Length" not in head.headers  # the refused PATCH declared nothing either
