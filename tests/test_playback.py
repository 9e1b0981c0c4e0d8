"""Signed playback URLs: `GET /api/v1/videos/{id}/playback` and what its URL gives.

On the local store the URL is the service's content endpoint signed with an HMAC and an expiry:
it reads the bytes (Range, HEAD) with no token until it expires, and a changed signature, video
or expiry is refused. On S3 it is a presigned GetObject that SeaweedFS answers directly. Only
the owner gets a URL, and only for a completed video.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import User, make_settings, new_user
from tests.support.live import LiveServer, start_server
from tests.support.tus import OCTETS, metadata, pattern
from video_upload.config import Settings
from video_upload.http.auth import Keys
from video_upload.http.signed_urls import KEY_FILE_NAME, PlaybackSigner, playback_key

API = "/api/v1"
TUS_PATH = f"{API}/videos/tus"
SIZE = 300_000
EXPIRY = 600


def _serve(
    request: pytest.FixtureRequest, base: Path, backend: str, **overrides: Any
) -> LiveServer:
    settings = make_settings(request, base, backend, playback_url_seconds=EXPIRY, **overrides)
    return start_server(f"playback-{backend}", settings)


@pytest.fixture(scope="module")
def local(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = _serve(request, tmp_path_factory.mktemp("playback-local"), "sqlite-local")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def s3(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = _serve(request, tmp_path_factory.mktemp("playback-s3"), "sqlite-s3")
    yield live
    live.stop()


def _session(client: httpx.Client, user: User) -> str:
    response = client.post(f"{API}/sessions", json={"name": "scales"}, headers=user.bearer)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _upload(client: httpx.Client, user: User, data: bytes, *, complete: bool = True) -> str:
    """A video of `data` (creation-with-upload, then complete unless told not to): its id."""
    created = client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(
                session_id=_session(client, user), filename="take 1.webm", filetype="video/webm"
            ),
            "Content-Type": OCTETS,
        },
        content=data,
    )
    assert created.status_code == 201, created.text
    upload_id = created.headers["Location"].rsplit("/", 1)[1]
    if not complete:
        status = client.get(f"{API}/videos/upload/{upload_id}/status", headers=user.bearer)
        return str(status.json()["video_id"])
    done = client.post(
        f"{API}/videos/upload/complete", json={"upload_id": upload_id}, headers=user.bearer
    )
    assert done.status_code == 200, done.text
    return str(done.json()["id"])


def _playback(client: httpx.Client, user: User, video_id: str) -> httpx.Response:
    return client.get(f"{API}/videos/{video_id}/playback", headers=user.bearer)


def _signed(url: str, **changes: str) -> str:
    """`url` with some of its query parameters replaced."""
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    return parts._replace(query=urlencode({**query, **changes})).geturl()


# -- the local store: the service's own signed content URL ---------------------------------


def test_local_signed_url_plays_the_video_with_ranges_and_no_token(local: LiveServer) -> None:
    user, data = new_user(local), pattern(SIZE, seed=1)
    with httpx.Client(base_url=local.base_url, timeout=30) as client:
        video_id = _upload(client, user, data)
        answer = _playback(client, user, video_id)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    url = body["url"]
    assert url.startswith(f"{local.base_url}{API}/videos/{video_id}/content?")
    query = parse_qs(urlsplit(url).query)
    expires = int(query["expires"][0])
    assert abs(expires - (datetime.now(UTC).timestamp() + EXPIRY)) < 30
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == expires

    whole = httpx.get(url, timeout=30)  # no Authorization header: the URL is enough
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).digest() == hashlib.sha256(data).digest()
    assert whole.headers["content-type"] == "video/webm"
    assert whole.headers["accept-ranges"] == "bytes"

    part = httpx.get(url, headers={"Range": "bytes=1000-70999"}, timeout=30)
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-70999/{SIZE}"
    assert part.content == data[1000:71000]
    tail = httpx.get(url, headers={"Range": "bytes=-500"}, timeout=30)
    assert (tail.status_code, tail.content) == (206, data[-500:])

    head = httpx.head(url, timeout=30)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(SIZE)


def test_local_signed_url_is_refused_once_it_has_expired(local: LiveServer) -> None:
    user = new_user(local)
    with httpx.Client(base_url=local.base_url, timeout=30) as client:
        video_id = _upload(client, user, pattern(1000, seed=2))
        url = _playback(client, user, video_id).json()["url"]
    assert httpx.get(url, timeout=30).status_code == 200
    local.clock.advance(seconds=EXPIRY + 1)
    try:
        expired = httpx.get(url, timeout=30)
        expired_head = httpx.head(url, timeout=30)
        with httpx.Client(base_url=local.base_url, timeout=30) as client:
            fresh = _playback(client, user, video_id).json()["url"]  # a new one works again
            assert httpx.get(fresh, timeout=30).status_code == 200
    finally:
        local.clock.advance(seconds=-(EXPIRY + 1))
    assert expired.status_code == 403
    assert expired.json()["error"]["code"] == "signature_expired"
    assert expired_head.status_code == 403


def test_local_signed_url_is_refused_when_anything_in_it_is_changed(local: LiveServer) -> None:
    user = new_user(local)
    with httpx.Client(base_url=local.base_url, timeout=30) as client:
        video_id = _upload(client, user, pattern(1000, seed=3))
        other_video = _upload(client, user, pattern(1000, seed=4))
        url = _playback(client, user, video_id).json()["url"]
    query = parse_qs(urlsplit(url).query)
    signature, expires = query["signature"][0], int(query["expires"][0])
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    refused = [
        _signed(url, signature=flipped),
        _signed(url, signature=signature.upper()),
        _signed(url, signature=""),
        _signed(url, expires=str(expires + 3600)),  # a longer life is not for the taking
        _signed(url, expires=f"0{expires}"),
        _signed(url, expires="9" * 400),
        url.replace(video_id, other_video),  # the signature is for one video only
        url.split("&")[0],  # the expiry without its signature
    ]
    for changed in refused:
        answer = httpx.get(changed, timeout=30)
        assert answer.status_code == 403, changed
        assert answer.json()["error"]["code"] == "invalid_signature", changed
    # a bad signature is refused even beside the owner's valid token
    with_token = httpx.get(_signed(url, signature=flipped), headers=user.bearer, timeout=30)
    assert with_token.status_code == 403


def test_content_without_a_token_or_a_signature_is_401(local: LiveServer) -> None:
    user = new_user(local)
    with httpx.Client(base_url=local.base_url, timeout=30) as client:
        video_id = _upload(client, user, pattern(1000, seed=5))
        assert client.get(f"{API}/videos/{video_id}/content").status_code == 401
        assert client.head(f"{API}/videos/{video_id}/content").status_code == 401
        with_token = client.get(f"{API}/videos/{video_id}/content", headers=user.bearer)
        assert with_token.status_code == 200  # the owner's token still works as before


def test_a_signed_url_for_a_video_that_is_gone_is_404(local: LiveServer) -> None:
    signer = PlaybackSigner(
        playback_key(local.settings, local.services.authenticator.keys)
    )  # the server's own key: a genuine signature for a video that never existed
    missing = uuid.uuid4()
    expires = int(datetime.now(UTC).timestamp()) + 60
    url = f"{local.base_url}{API}/videos/{missing}/content?{signer.query(missing, expires)}"
    answer = httpx.get(url, timeout=30)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "video_not_found"


def test_playback_is_for_the_owner_of_a_completed_video_only(local: LiveServer) -> None:
    owner, stranger = new_user(local), new_user(local)
    with httpx.Client(base_url=local.base_url, timeout=30) as client:
        video_id = _upload(client, owner, pattern(1000, seed=6))
        unfinished = _upload(client, owner, pattern(1000, seed=7), complete=False)
        other = _playback(client, stranger, video_id)
        missing = _playback(client, owner, str(uuid.uuid4()))
        not_ready = _playback(client, owner, unfinished)
        anonymous = client.get(f"{API}/videos/{video_id}/playback")
    assert (other.status_code, other.json()["error"]["code"]) == (403, "forbidden")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "video_not_found")
    assert (not_ready.status_code, not_ready.json()["error"]["code"]) == (409, "video_not_ready")
    assert anonymous.status_code == 401


def test_playback_url_is_built_on_public_base_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    live = _serve(request, tmp_path, "sqlite-local", public_base_url="https://videos.example.org")
    try:
        user = new_user(live)
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            video_id = _upload(client, user, pattern(1000, seed=8))
            url = _playback(client, user, video_id).json()["url"]
    finally:
        live.stop()
    assert url.startswith(f"https://videos.example.org{API}/videos/{video_id}/content?expires=")


# -- the key ---------------------------------------------------------------------------------


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[call-arg]


def test_key_is_the_setting_or_derived_from_the_jwt_secret_never_the_secret_itself(
    tmp_path: Path,
) -> None:
    secret = "s" * 40
    hmac_keys = Keys("HS256", secret, secret)
    configured = _settings(tmp_path, playback_signing_key="k" * 32)
    assert playback_key(configured, hmac_keys) == b"k" * 32
    derived = playback_key(_settings(tmp_path), hmac_keys)
    assert len(derived) == 32 and secret.encode() not in derived
    assert derived == playback_key(_settings(tmp_path), hmac_keys)  # every node agrees
    assert derived != playback_key(_settings(tmp_path), Keys("HS256", "t" * 40, "t" * 40))
    assert not (tmp_path / KEY_FILE_NAME).exists()
    with pytest.raises(ValueError, match="PLAYBACK_SIGNING_KEY"):
        _settings(tmp_path, playback_signing_key="short")


def test_without_a_shared_jwt_secret_a_key_is_generated_into_data_dir(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = _settings(tmp_path, jwt_algorithm="ES256", jwt_public_key=public_pem)
    keys = Keys("ES256", public_pem, "")
    first = playback_key(settings, keys)
    path = tmp_path / KEY_FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(first) >= 32
    assert playback_key(settings, keys) == first  # kept, not generated again
    assert public_pem.encode() not in first


def test_signatures_check_the_video_the_expiry_and_the_clock() -> None:
    signer = PlaybackSigner(b"k" * 32)
    video, other = uuid.uuid4(), uuid.uuid4()
    expires = 2_000_000_000
    good = signer.signature(video, expires)
    before = datetime.fromtimestamp(expires - 1, UTC)
    signer.check(video, str(expires), good, before)
    for args in [
        (other, str(expires), good),
        (video, str(expires + 1), good),
        (video, None, good),
        (video, str(expires), None),
        (video, "-1", good),
        (video, str(expires), good[:-1]),
    ]:
        with pytest.raises(Exception, match="signature is not valid"):
            signer.check(*args, before)
    with pytest.raises(Exception, match="expired"):
        signer.check(video, str(expires), good, datetime.fromtimestamp(expires, UTC))


# -- S3: a presigned GetObject -----------------------------------------------------------------


def test_s3_playback_is_a_presigned_get_of_the_object_with_ranges(s3: LiveServer) -> None:
    user, data = new_user(s3), pattern(SIZE, seed=9)
    with httpx.Client(base_url=s3.base_url, timeout=30) as client:
        video_id = _upload(client, user, data)
        answer = _playback(client, user, video_id)
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    endpoint = s3.settings.s3_endpoint_url
    assert url.startswith(f"{endpoint}/{s3.settings.s3_bucket_name}/")
    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Expires" in query:  # SigV4
        assert query["X-Amz-Expires"] == [str(EXPIRY)]
    else:  # SigV2 names the time it expires
        assert abs(int(query["Expires"][0]) - datetime.now(UTC).timestamp() - EXPIRY) < 30
    assert query["response-content-type"] == ["video/webm"]

    whole = httpx.get(url, timeout=30)  # straight from SeaweedFS, no service in between
    assert whole.status_code == 200, whole.text
    assert hashlib.sha256(whole.content).digest() == hashlib.sha256(data).digest()
    assert whole.headers["content-type"] == "video/webm"
    part = httpx.get(url, headers={"Range": "bytes=5000-9999"}, timeout=30)
    assert part.status_code == 206
    assert part.content == data[5000:10000]

    # the type is signed: nobody can have the object served as a web page instead
    assert httpx.get(_signed(url, **{"response-content-type": "text/html"})).status_code == 403
