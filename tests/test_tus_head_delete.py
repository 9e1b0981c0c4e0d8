"""tus HEAD, termination and expiration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import User, make_settings
from tests.support.live import LiveServer, start_server
from tests.support.tus import auth, create_upload, patch_headers


def test_head_reports_offset_length_expiry_and_no_store(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 50)
    client.patch(url, headers=patch_headers(user.headers, 0), content=b"q" * 20)
    head = client.head(url, headers=user.headers)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "20"
    assert head.headers["Upload-Length"] == "50"
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Upload-Expires"].endswith("GMT")
    assert "Upload-Metadata" in head.headers


def test_head_of_unknown_upload_returns_404(client: httpx.Client, user: User) -> None:
    assert client.head("/api/v1/videos/tus/doesnotexist", headers=user.headers).status_code == 404


def test_delete_terminates_and_later_requests_get_404(
    client: httpx.Client, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 50)
    client.patch(url, headers=patch_headers(user.headers, 0), content=b"q" * 20)
    assert client.delete(url, headers=user.headers).status_code == 204
    assert client.head(url, headers=user.headers).status_code in (404, 410)
    patch = client.patch(url, headers=patch_headers(user.headers, 20), content=b"q")
    assert patch.status_code in (404, 410)
    assert client.delete(url, headers=user.headers).status_code in (404, 410)


def test_each_patch_moves_expiry_forward(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    url = create_upload(client, user.headers, session_id, 50)
    before = client.head(url, headers=user.headers).headers["Upload-Expires"]
    server.clock.advance(hours=1)
    try:
        patched = client.patch(url, headers=patch_headers(user.headers, 0), content=b"a")
        expected = server.clock() + timedelta(hours=server.settings.upload_expiration_hours)
    finally:
        server.clock.advance(hours=-1)
    assert patched.status_code == 204
    assert httpx_date(patched.headers["Upload-Expires"]) > httpx_date(before)
    # the new expiry, to the second, in RFC 9110's format
    assert abs(httpx_date(patched.headers["Upload-Expires"]) - expected.timestamp()) < 2
    assert patched.headers["Upload-Expires"] == format_datetime(
        datetime.fromtimestamp(httpx_date(patched.headers["Upload-Expires"]), UTC), usegmt=True
    )


def test_patches_within_a_minute_leave_the_expiry_where_it_stands(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    url = create_upload(client, user.headers, session_id, 50)
    first = client.patch(url, headers=patch_headers(user.headers, 0), content=b"a")
    server.clock.advance(seconds=30)
    try:
        second = client.patch(url, headers=patch_headers(user.headers, 1), content=b"b")
        head = client.head(url, headers=user.headers)
    finally:
        server.clock.advance(seconds=-30)
    assert second.status_code == 204
    # the expiry moves in steps of a minute; every answer tells the one that stands
    assert second.headers["Upload-Expires"] == first.headers["Upload-Expires"]
    assert head.headers["Upload-Expires"] == first.headers["Upload-Expires"]


def test_with_a_short_expiration_window_each_patch_still_moves_the_expiry(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = make_settings(request, tmp_path, "sqlite-local", upload_expiration_hours=0.01)
    live = start_server("short-expiry", settings)  # 36 seconds: steps of 0.36 s
    try:
        with httpx.Client(base_url=live.base_url) as client:
            headers = auth(live.token("alice"))
            session = client.post("/api/v1/sessions", headers=headers, json={}).json()["id"]
            url = create_upload(client, headers, session, 50)
            live.clock.advance(seconds=20)
            patched = client.patch(url, headers=patch_headers(headers, 0), content=b"a")
            expected = live.clock() + timedelta(seconds=36)
        assert patched.status_code == 204
        assert abs(httpx_date(patched.headers["Upload-Expires"]) - expected.timestamp()) < 2
    finally:
        live.stop()


def test_expired_upload_answers_410(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    url = create_upload(client, user.headers, session_id, 50)
    server.clock.advance(hours=server.settings.upload_expiration_hours + 1)
    try:
        assert client.head(url, headers=user.headers).status_code == 410
        patch = client.patch(url, headers=patch_headers(user.headers, 0), content=b"a")
        assert patch.status_code == 410
    finally:
        server.clock.advance(hours=-(server.settings.upload_expiration_hours + 1))


def test_completed_upload_does_not_expire(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    url = create_upload(client, user.headers, session_id, 3)
    client.patch(url, headers=patch_headers(user.headers, 0), content=b"abc")
    server.clock.advance(hours=server.settings.upload_expiration_hours + 1)
    try:
        head = client.head(url, headers=user.headers)
    finally:
        server.clock.advance(hours=-(server.settings.upload_expiration_hours + 1))
    assert head.status_code == 200
    assert "Upload-Expires" not in head.headers


def httpx_date(value: str) -> float:
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(value).timestamp()
