"""tus creation, creation-with-upload and creation-defer-length."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.tus import OCTETS, metadata

TUS_PATH = "/api/v1/videos/tus"


def create(client: httpx.Client, user: User, session_id: str, **headers: str) -> httpx.Response:
    all_headers = {"Upload-Metadata": metadata(session_id=session_id, filename="take1.mp4")}
    all_headers.update({key.replace("_", "-"): value for key, value in headers.items()})
    return client.post(TUS_PATH, headers={**user.headers, **all_headers})


def test_options_advertises_version_extensions_max_size_and_checksums_without_auth(
    client: httpx.Client, server: LiveServer
) -> None:
    response = client.options(TUS_PATH)
    assert response.status_code in (200, 204)
    assert response.headers["Tus-Version"] == "1.0.0"
    extensions = set(response.headers["Tus-Extension"].split(","))
    assert {
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "checksum",
        "expiration",
        "concatenation",
        "concatenation-unfinished",
    } <= extensions
    assert "checksum-trailer" not in extensions
    assert response.headers["Tus-Max-Size"] == str(server.settings.max_video_size_mb * 1024 * 1024)
    assert "sha1" in response.headers["Tus-Checksum-Algorithm"].split(",")


@pytest.mark.any_backend
def test_other_methods_on_the_creation_endpoint_return_405_naming_post(
    client: httpx.Client, user: User
) -> None:
    # GET /api/v1/videos/tus must not be read as a video whose id is "tus"
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = client.request(method, TUS_PATH, headers=user.headers)
        assert response.status_code == 405, (method, response.text)
        assert response.headers["Allow"] == "POST, OPTIONS"
        assert response.headers["Tus-Resumable"] == "1.0.0"


def test_creation_returns_201_with_an_absolute_location_and_expiry(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    response = create(client, user, session_id, Upload_Length="1000")
    assert response.status_code == 201, response.text
    assert response.headers["Location"].startswith(f"{server.base_url}{TUS_PATH}/")
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Upload-Expires"].endswith("GMT")


@pytest.mark.any_backend
def test_creation_without_length_or_defer_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    assert create(client, user, session_id).status_code == 400


@pytest.mark.any_backend
def test_creation_with_invalid_length_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    for bad in ("-1", "abc", "1.5", ""):
        assert create(client, user, session_id, Upload_Length=bad).status_code == 400, bad


@pytest.mark.any_backend
def test_creation_with_both_length_and_defer_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    response = create(client, user, session_id, Upload_Length="10", Upload_Defer_Length="1")
    assert response.status_code == 400


@pytest.mark.any_backend
def test_creation_over_max_size_returns_413(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    too_big = server.settings.max_upload_size + 1
    assert create(client, user, session_id, Upload_Length=str(too_big)).status_code == 413


def test_creation_keeps_metadata_exactly_as_sent(
    client: httpx.Client, user: User, session_id: str
) -> None:
    raw = f"{metadata(session_id=session_id, filename='étude.mov')},flag"
    response = client.post(
        TUS_PATH, headers={**user.headers, "Upload-Length": "5", "Upload-Metadata": raw}
    )
    assert response.status_code == 201, response.text
    head = client.head(response.headers["Location"], headers=user.headers)
    assert head.headers["Upload-Metadata"] == raw


@pytest.mark.any_backend
def test_creation_with_duplicate_metadata_keys_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    raw = f"{metadata(session_id=session_id)},{metadata(session_id=session_id)}"
    response = client.post(
        TUS_PATH, headers={**user.headers, "Upload-Length": "5", "Upload-Metadata": raw}
    )
    assert response.status_code == 400


@pytest.mark.any_backend
def test_creation_with_non_base64_metadata_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    raw = f"{metadata(session_id=session_id)},filename not*base64!"
    response = client.post(
        TUS_PATH, headers={**user.headers, "Upload-Length": "5", "Upload-Metadata": raw}
    )
    assert response.status_code == 400


def test_creation_without_session_id_returns_404(client: httpx.Client, user: User) -> None:
    response = client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Length": "5",
            "Upload-Metadata": metadata(filename="a.mp4"),
        },
    )
    assert response.status_code == 404


def test_creation_in_another_users_session_returns_403(
    client: httpx.Client, other_user: User, session_id: str
) -> None:
    response = create(client, other_user, session_id, Upload_Length="5")
    assert response.status_code == 403


@pytest.mark.any_backend
def test_creation_of_a_non_video_filetype_returns_415(
    client: httpx.Client, user: User, session_id: str
) -> None:
    response = client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Length": "5",
            "Upload-Metadata": metadata(session_id=session_id, filetype="text/plain"),
        },
    )
    assert response.status_code == 415


def test_creation_with_upload_stores_the_body_and_reports_offset(
    client: httpx.Client, user: User, session_id: str
) -> None:
    response = client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Length": "10",
            "Upload-Metadata": metadata(session_id=session_id),
            "Content-Type": OCTETS,
        },
        content=b"hello",
    )
    assert response.status_code == 201, response.text
    assert response.headers["Upload-Offset"] == "5"
    head = client.head(response.headers["Location"], headers=user.headers)
    assert head.headers["Upload-Offset"] == "5"


def test_creation_with_body_of_wrong_content_type_returns_415_and_creates_nothing(
    client: httpx.Client, user: User, session_id: str
) -> None:
    response = client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Length": "10",
            "Upload-Metadata": metadata(session_id=session_id),
            "Content-Type": "text/plain",
        },
        content=b"hello",
    )
    assert response.status_code == 415
    videos = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer)
    assert videos.json() == []


def test_deferred_length_upload_accepts_its_length_once_then_completes(
    client: httpx.Client, user: User, session_id: str
) -> None:
    created = create(client, user, session_id, Upload_Defer_Length="1")
    assert created.status_code == 201
    url = created.headers["Location"]
    head = client.head(url, headers=user.headers)
    assert head.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in head.headers
    first = client.patch(
        url,
        headers={**user.headers, "Upload-Offset": "0", "Content-Type": OCTETS},
        content=b"abc",
    )
    assert first.status_code == 204
    second = client.patch(
        url,
        headers={
            **user.headers,
            "Upload-Offset": "3",
            "Upload-Length": "6",
            "Content-Type": OCTETS,
        },
        content=b"def",
    )
    assert second.status_code == 204, second.text
    head = client.head(url, headers=user.headers)
    assert head.headers["Upload-Length"] == "6"
    assert head.headers["Upload-Offset"] == "6"
    changed = client.patch(
        url,
        headers={
            **user.headers,
            "Upload-Offset": "6",
            "Upload-Length": "7",
            "Content-Type": OCTETS,
        },
        content=b"",
    )
    assert changed.status_code == 400


def test_zero_length_upload_is_complete_at_creation(
    client: httpx.Client, user: User, session_id: str
) -> None:
    created = create(client, user, session_id, Upload_Length="0")
    assert created.status_code == 201
    head = client.head(created.headers["Location"], headers=user.headers)
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == "0"


@pytest.mark.any_backend
def test_request_without_tus_resumable_returns_412_with_version(
    client: httpx.Client, user: User, session_id: str
) -> None:
    response = client.post(
        TUS_PATH,
        headers={
            "Authorization": f"Bearer {user.token}",
            "Upload-Length": "5",
            "Upload-Metadata": metadata(session_id=session_id),
        },
    )
    assert response.status_code == 412
    assert response.headers["Tus-Version"] == "1.0.0"
    wrong = client.post(
        TUS_PATH,
        headers={**user.headers, "Tus-Resumable": "0.2.2", "Upload-Length": "5"},
    )
    assert wrong.status_code == 412


def test_location_follows_forwarded_headers_only_behind_a_trusted_proxy(
    client: httpx.Client, user: User, session_id: str, server: LiveServer
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "uploads.example.org"}
    response = create(
        client,
        user,
        session_id,
        Upload_Length="5",
        **{key.replace("-", "_"): value for key, value in forwarded.items()},
    )
    # the host is the request's own (the scheme is uvicorn's: the test server runs it with its
    # default proxy_headers, `video-upload serve` with TRUST_PROXY_HEADERS)
    untrusted = urlsplit(response.headers["Location"])
    assert (untrusted.netloc, untrusted.path.startswith(TUS_PATH)) == (
        urlsplit(server.base_url).netloc,
        True,
    )
    server.settings.trust_proxy_headers = True
    try:
        trusted = create(
            client,
            user,
            session_id,
            Upload_Length="5",
            **{key.replace("-", "_"): value for key, value in forwarded.items()},
        )
    finally:
        server.settings.trust_proxy_headers = False
    assert trusted.headers["Location"].startswith("https://uploads.example.org" + TUS_PATH)


def test_every_tus_response_carries_tus_resumable(
    client: httpx.Client, user: User, session_id: str
) -> None:
    created = create(client, user, session_id, Upload_Length="5")
    url = created.headers["Location"]
    responses = [
        created,
        client.head(url, headers=user.headers),
        client.patch(
            url,
            headers={**user.headers, "Upload-Offset": "0", "Content-Type": OCTETS},
            content=b"12",
        ),
        client.head(url + "x", headers=user.headers),
        client.delete(url, headers=user.headers),
    ]
    for response in responses:
        assert response.headers.get("Tus-Resumable") == "1.0.0", response.request.method
