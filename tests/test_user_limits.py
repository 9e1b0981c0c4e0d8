"""Per-user limits: each answers as specified over REST and tus, holds across two nodes, and
leaves what the user already has untouched."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.live import LiveServer, start_server
from tests.support.tus import TUS_PATH, auth, metadata, patch_headers

MIB = 1024 * 1024


def fresh_user() -> str:
    """A user of this test alone (the PostgreSQL database is shared by the whole run)."""
    return f"user-{secrets.token_hex(6)}"


def limited_servers(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, nodes: int, **limits: Any
) -> list[LiveServer]:
    """`nodes` servers on one database and one storage folder, with `limits` set."""
    settings = make_settings(request, tmp_path, backend, **limits)
    return [start_server(f"limits-{index}", settings) for index in range(nodes)]


@pytest.fixture(params=["sqlite-local", "postgres-local"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stop_after() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def session(server: LiveServer, headers: dict[str, str]) -> str:
    created = httpx.post(f"{server.base_url}/api/v1/sessions", json={"name": "s"}, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def tus_create(server: LiveServer, headers: dict[str, str], session_id: str, length: int) -> Any:
    return httpx.post(
        server.base_url + TUS_PATH,
        headers={
            **headers,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(session_id=session_id),
        },
    )


def rest_init(server: LiveServer, token: str, session_id: str, size: int) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v1/videos/upload/init",
        json={
            "session_id": session_id,
            "filename": "take.mp4",
            "file_size": size,
            "duration_seconds": 10,
            "content_type": "video/mp4",
        },
        headers={"Authorization": f"Bearer {token}"},
    )


def test_unfinished_uploads_are_limited_per_user_across_two_nodes(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, stop_after: list[LiveServer]
) -> None:
    nodes = limited_servers(request, tmp_path, backend, 2, user_max_unfinished_uploads=2)
    stop_after.extend(nodes)
    token = nodes[0].token(fresh_user())
    headers = auth(token)
    session_id = session(nodes[0], headers)
    first = tus_create(nodes[0], headers, session_id, 10)
    second = tus_create(nodes[1], headers, session_id, 10)
    assert first.status_code == second.status_code == 201
    refused = tus_create(nodes[1], headers, session_id, 10)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/plain")
    assert "unfinished uploads" in refused.text
    refused_rest = rest_init(nodes[0], token, session_id, 10)
    assert refused_rest.status_code == 403
    assert refused_rest.json()["error"]["code"] == "too_many_unfinished_uploads"
    # another user is not limited by alice's uploads, and alice's uploads still work
    bob = auth(nodes[0].token(fresh_user()))
    assert tus_create(nodes[0], bob, session(nodes[0], bob), 10).status_code == 201
    url = httpx.URL(nodes[0].base_url).join(first.headers["Location"])
    assert (
        httpx.patch(url, headers=patch_headers(headers, 0), content=b"0123456789").status_code
        == 204
    )
    assert tus_create(nodes[1], headers, session_id, 10).status_code == 201  # one finished


def test_bytes_of_unfinished_uploads_are_limited(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, stop_after: list[LiveServer]
) -> None:
    (server,) = limited_servers(request, tmp_path, backend, 1, user_max_unfinished_mb=3)
    stop_after.append(server)
    token = server.token(fresh_user())
    session_id = session(server, auth(token))
    assert rest_init(server, token, session_id, 2 * MIB).status_code == 201
    refused = rest_init(server, token, session_id, 2 * MIB)
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "unfinished_quota_exceeded"
    accepted = rest_init(server, token, session_id, MIB)
    assert accepted.status_code == 201, accepted.text


def test_stored_bytes_are_limited(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, stop_after: list[LiveServer]
) -> None:
    (server,) = limited_servers(request, tmp_path, backend, 1, user_max_stored_mb=1)
    stop_after.append(server)
    headers = auth(server.token(fresh_user()))
    session_id = session(server, headers)
    created = tus_create(server, headers, session_id, MIB // 2)
    url = httpx.URL(server.base_url).join(created.headers["Location"])
    sent = httpx.patch(url, headers=patch_headers(headers, 0), content=b"v" * (MIB // 2))
    assert sent.status_code == 204
    refused = tus_create(server, headers, session_id, MIB // 2 + 1)
    assert refused.status_code == 413
    assert "quota" in refused.text or "MB" in refused.text
    head = httpx.head(url, headers=headers)
    assert head.headers["Upload-Offset"] == str(MIB // 2)  # the stored video is untouched


def test_creations_per_minute_are_limited_with_retry_after(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, stop_after: list[LiveServer]
) -> None:
    (server,) = limited_servers(request, tmp_path, backend, 1, user_max_creations_per_minute=3)
    stop_after.append(server)
    headers = auth(server.token(fresh_user()))
    session_id = session(server, headers)
    for _ in range(3):
        assert tus_create(server, headers, session_id, 10).status_code == 201
    refused = tus_create(server, headers, session_id, 10)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    server.clock.advance(minutes=1, seconds=1)
    assert tus_create(server, headers, session_id, 10).status_code == 201


def test_a_deferred_length_declared_later_counts_against_the_byte_limits(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, stop_after: list[LiveServer]
) -> None:
    (server,) = limited_servers(request, tmp_path, backend, 1, user_max_unfinished_mb=1)
    stop_after.append(server)
    headers = auth(server.token(fresh_user()))
    session_id = session(server, headers)
    created = httpx.post(
        server.base_url + TUS_PATH,
        headers={
            **headers,
            "Upload-Defer-Length": "1",
            "Upload-Metadata": metadata(session_id=session_id),
        },
    )
    assert created.status_code == 201, created.text
    url = httpx.URL(server.base_url).join(created.headers["Location"])
    declared = {**patch_headers(headers, 0), "Upload-Length": str(2 * MIB)}
    refused = httpx.patch(url, headers=declared, content=b"d" * 10)
    assert refused.status_code == 413
    head = httpx.head(url, headers=headers)
    assert head.headers["Upload-Offset"] == "0"
    assert "Upload-Defer-Length" in head.headers  # the length was not taken
