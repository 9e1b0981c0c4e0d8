"""What a client may send is bounded and storable: Upload-Metadata, media types, names, ids,
token subjects. Every refusal is a 4xx that says why (never the 503 a failed statement gives,
which clients retry forever), and leaves nothing stored."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.rows import orm_session
from tests.support.tus import metadata

TUS_PATH = "/api/v1/videos/tus"
API = "/api/v1"
INIT = f"{API}/videos/upload/init"
INJECTED_TYPE = "video/x\r\nSet-Cookie: a=b"
NOT_ASCII_TYPE = "video/mp4\u4e2d"


def rows(server: LiveServer, table: str, user_id: str) -> int:
    """How many rows of `table` the user has, read straight from the database."""

    async def count() -> int:
        async with orm_session(server.settings.resolved_database_url) as db:
            result = await db.execute(
                text(f"SELECT count(*) FROM {table} WHERE user_id = :user"), {"user": user_id}
            )
            return int(result.scalar_one())

    return asyncio.run(count())


def init_body(session_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": session_id,
        "filename": "take.mp4",
        "file_size": 1000,
        "duration_seconds": 10,
    }
    body.update(overrides)
    return body


def tus_create(client: httpx.Client, user: User, upload_metadata: str) -> httpx.Response:
    headers = {**user.headers, "Upload-Length": "10", "Upload-Metadata": upload_metadata}
    return client.post(TUS_PATH, headers=headers)


# -- Upload-Metadata -----------------------------------------------------------------------


def test_an_initialised_upload_created_over_tus_keeps_its_upload_metadata(
    client: httpx.Client, user: User, session_id: str
) -> None:
    init = client.post(INIT, json=init_body(session_id, file_size=10), headers=user.bearer)
    url = init.json()["upload_url"]
    sent = metadata(filename="take.mp4", filetype="video/mp4", take="3")

    created = client.post(
        url, headers={**user.headers, "Upload-Length": "10", "Upload-Metadata": sent}
    )
    head = client.head(url, headers=user.headers)

    assert created.status_code == 201, created.text
    assert head.headers["Upload-Metadata"] == sent


def test_upload_metadata_over_4_kib_is_refused_and_nothing_is_stored(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    big = metadata(session_id=session_id, filename="take.mp4", notes="n" * 4000)

    created = tus_create(client, user, big)
    init = client.post(INIT, json=init_body(session_id, file_size=10), headers=user.bearer)
    claimed = client.post(
        init.json()["upload_url"],
        headers={**user.headers, "Upload-Length": "10", "Upload-Metadata": big},
    )
    head = client.head(init.json()["upload_url"], headers=user.headers)

    assert created.status_code == 400
    assert "Upload-Metadata" in created.text and "4096" in created.text
    assert claimed.status_code == 400
    assert "Upload-Metadata" not in head.headers
    assert rows(server, "videos", user.id) == 1  # the init's, nothing else


@pytest.mark.parametrize("filetype", [INJECTED_TYPE, NOT_ASCII_TYPE, "video/" + "x" * 300, "mp4"])
def test_a_tus_filetype_that_is_not_a_bounded_media_type_is_400(
    client: httpx.Client, server: LiveServer, user: User, session_id: str, filetype: str
) -> None:
    created = tus_create(
        client, user, metadata(session_id=session_id, filename="take.mp4", filetype=filetype)
    )

    assert created.status_code == 400, created.text
    assert "media type" in created.text
    assert rows(server, "videos", user.id) == 0


@pytest.mark.parametrize("content_type", [INJECTED_TYPE, NOT_ASCII_TYPE, "video/" + "x" * 300])
def test_a_rest_content_type_that_is_not_a_bounded_media_type_is_refused(
    client: httpx.Client, server: LiveServer, user: User, session_id: str, content_type: str
) -> None:
    init = client.post(
        INIT, json=init_body(session_id, content_type=content_type), headers=user.bearer
    )

    assert init.status_code == 422, init.text
    assert init.json()["error"]["details"]["fields"][0]["field"] == "content_type"
    assert rows(server, "videos", user.id) == 0


def test_a_media_type_with_parameters_is_accepted_and_stored_without_them(
    client: httpx.Client, user: User, session_id: str
) -> None:
    init = client.post(
        INIT,
        json=init_body(session_id, content_type='video/mp4; codecs="avc1.42E01E, mp4a.40.2"'),
        headers=user.bearer,
    )
    assert init.status_code == 201, init.text
    video = client.get(f"{API}/videos/{init.json()['video_id']}", headers=user.bearer)
    assert video.json()["content_type"] == "video/mp4"


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [256, 1024])
def test_a_long_mp4_name_is_a_video_whose_shown_name_is_cut(
    client: httpx.Client, user: User, session_id: str, length: int
) -> None:
    name = "x" * (length - 4) + ".mp4"
    init = client.post(INIT, json=init_body(session_id, filename=name), headers=user.bearer)
    created = tus_create(client, user, metadata(session_id=session_id, filename=name))

    assert init.status_code == 201, init.text
    assert created.status_code == 201, created.text
    video = client.get(f"{API}/videos/{init.json()['video_id']}", headers=user.bearer).json()
    assert (video["content_type"], len(video["filename"])) == ("video/mp4", 255)


def test_a_session_name_with_nul_is_refused_and_no_session_is_made(
    client: httpx.Client, server: LiveServer, user: User
) -> None:
    response = client.post(f"{API}/sessions", json={"name": "scales\u0000"}, headers=user.bearer)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["fields"][0]["field"] == "name"
    assert rows(server, "practice_sessions", user.id) == 0


def test_a_session_name_over_255_characters_is_refused(
    client: httpx.Client, server: LiveServer, user: User
) -> None:
    response = client.post(f"{API}/sessions", json={"name": "n" * 256}, headers=user.bearer)

    assert response.status_code == 422
    assert rows(server, "practice_sessions", user.id) == 0


# -- identifiers ---------------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["u" * 256, "user\u0000x"])
def test_a_token_whose_subject_cannot_be_a_user_id_is_401_on_rest_and_tus(
    client: httpx.Client, server: LiveServer, subject: str
) -> None:
    token = server.token(subject)
    bearer = {"Authorization": f"Bearer {token}"}

    session = client.post(f"{API}/sessions", json={"name": "scales"}, headers=bearer)
    created = client.post(
        TUS_PATH, headers={**bearer, "Tus-Resumable": "1.0.0", "Upload-Length": "10"}
    )

    assert session.status_code == 401, session.text
    assert "subject" in session.json()["error"]["message"]
    assert created.status_code == 401, created.text
    if "\x00" not in subject:  # (PostgreSQL cannot even be asked about the other one)
        assert rows(server, "practice_sessions", subject) == 0


@pytest.mark.parametrize("upload_id", ["%00", "x" * 101, "a%0Ab"])
def test_an_upload_id_the_service_could_not_have_made_is_404_or_422(
    client: httpx.Client, user: User, upload_id: str
) -> None:
    url = f"{TUS_PATH}/{upload_id}"
    patch_headers = {**user.headers, "Upload-Offset": "0"}
    patch_headers["Content-Type"] = "application/offset+octet-stream"

    assert client.head(url, headers=user.headers).status_code == 404
    assert client.patch(url, headers=patch_headers, content=b"x").status_code == 404
    assert client.delete(url, headers=user.headers).status_code == 404
    assert client.post(url, headers={**user.headers, "Upload-Length": "1"}).status_code == 404
    status = client.get(f"{API}/videos/upload/{upload_id}/status", headers=user.bearer)
    assert status.status_code == 422
    complete = client.post(
        f"{API}/videos/upload/complete",
        json={"upload_id": "\u0000"},
        headers=user.bearer,
    )
    assert complete.status_code == 422
