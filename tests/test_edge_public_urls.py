"""Absolute upload URLs (`upload_url`, tus `Location`): PUBLIC_BASE_URL, else the request's
Host, never a hostile one; forwarded headers only behind a trusted proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.rows import orm_session
from tests.support.tus import metadata
from video_upload.http.tus.public_url import valid_host

TUS_PATH = "/api/v1/videos/tus"
INIT = "/api/v1/videos/upload/init"
HOSTILE_HOSTS = [
    "evil.example.org/steal?",
    "user@evil.example.org",
    "evil.example.org:99999",
    "a b",
    "[not-ipv6]",
    "",
]


def uploads_of(server: LiveServer, user_id: str) -> int:
    """How many upload rows the user has, read straight from the database."""

    async def count() -> int:
        async with orm_session(server.settings.resolved_database_url) as db:
            result = await db.execute(
                text("SELECT count(*) FROM videos WHERE user_id = :user"), {"user": user_id}
            )
            return int(result.scalar_one())

    return asyncio.run(count())


def init_body(session_id: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "filename": "take.mp4",
        "file_size": 1000,
        "duration_seconds": 10,
    }


def tus_create(client: httpx.Client, user: User, session_id: str, **headers: str) -> httpx.Response:
    return client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Length": "10",
            "Upload-Metadata": metadata(session_id=session_id, filename="take.mp4"),
            **headers,
        },
    )


@contextmanager
def settings_changed(server: LiveServer, **values: Any) -> Iterator[None]:
    old = {name: getattr(server.settings, name) for name in values}
    for name, value in values.items():
        setattr(server.settings, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(server.settings, name, value)


@pytest.mark.parametrize(
    "host",
    ["uploads.example.org", "uploads.example.org:8443", "127.0.0.1:8000", "[::1]:8000", "node_1"],
)
def test_a_plain_host_and_port_is_valid(host: str) -> None:
    assert valid_host(host)


@pytest.mark.parametrize("host", [*HOSTILE_HOSTS, "x" * 256, "[::1", "host:0", "é.example"])
def test_anything_but_a_host_and_port_is_invalid(host: str) -> None:
    assert not valid_host(host)


def test_init_and_tus_creation_answer_absolute_urls_of_the_request_host(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    init = client.post(INIT, json=init_body(session_id), headers=user.bearer)
    created = tus_create(client, user, session_id)

    assert init.status_code == 201, init.text
    assert created.status_code == 201, created.text
    upload_id = init.json()["upload_id"]
    assert init.json()["upload_url"] == f"{server.base_url}{TUS_PATH}/{upload_id}"
    assert created.headers["Location"].startswith(f"{server.base_url}{TUS_PATH}/")
    # the URL is usable as it is
    assert client.head(created.headers["Location"], headers=user.headers).status_code == 200


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_a_hostile_host_is_refused_400_and_nothing_is_created(
    client: httpx.Client, server: LiveServer, user: User, session_id: str, host: str
) -> None:
    init = client.post(INIT, json=init_body(session_id), headers={**user.bearer, "Host": host})
    created = tus_create(client, user, session_id, Host=host)

    assert (init.status_code, init.json()["error"]["code"]) == (400, "invalid_host")
    assert created.status_code == 400
    assert "host" in created.text
    assert "Location" not in created.headers
    assert uploads_of(server, user.id) == 0


def test_public_base_url_is_used_whatever_the_host(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    base = "https://uploads.example.org/video"
    with settings_changed(server, public_base_url=base):
        init = client.post(
            INIT, json=init_body(session_id), headers={**user.bearer, "Host": "evil.example/x"}
        )
        created = tus_create(client, user, session_id, Host="evil.example/x")

    assert init.status_code == 201, init.text
    assert init.json()["upload_url"] == f"{base}{TUS_PATH}/{init.json()['upload_id']}"
    assert created.status_code == 201, created.text
    assert created.headers["Location"].startswith(f"{base}{TUS_PATH}/")


def test_forwarded_header_names_scheme_and_host_only_behind_a_trusted_proxy(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    forwarded = {"Forwarded": 'for=192.0.2.1;proto=https;host="uploads.example.org:8443"'}
    untrusted = tus_create(client, user, session_id, **forwarded)
    with settings_changed(server, trust_proxy_headers=True):
        trusted = tus_create(client, user, session_id, **forwarded)
        init = client.post(INIT, json=init_body(session_id), headers={**user.bearer, **forwarded})

    assert "uploads.example.org" not in untrusted.headers["Location"]
    assert trusted.headers["Location"].startswith(f"https://uploads.example.org:8443{TUS_PATH}/")
    assert init.json()["upload_url"].startswith(f"https://uploads.example.org:8443{TUS_PATH}/")


def test_a_hostile_forwarded_host_is_refused_even_from_a_trusted_proxy(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    with settings_changed(server, trust_proxy_headers=True):
        hostile = {"X-Forwarded-Host": "evil.example.org/x#", "X-Forwarded-Proto": "https"}
        created = tus_create(client, user, session_id, **hostile)

    assert created.status_code == 400
    assert uploads_of(server, user.id) == 0
