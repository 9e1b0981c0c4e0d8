"""JWT authentication and per-user ownership on every tus and REST endpoint."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest

from tests.conftest import User, make_settings, new_user
from tests.support.live import LiveServer, start_server
from tests.support.tus import TUS, create_upload, patch_headers

TUS_PATH = "/api/v1/videos/tus"


def unsigned_token(sub: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': sub, 'exp': time.time() + 60})}."


def bad_tokens(server: LiveServer) -> dict[str, str]:
    now = int(time.time())
    secret = server.settings.jwt_secret.get_secret_value()
    return {
        "garbage": "not-a-jwt",
        "expired": jwt.encode({"sub": "u", "exp": now - 10}, secret, algorithm="HS256"),
        "wrong key": jwt.encode(
            {"sub": "u", "exp": now + 60}, "another-secret-of-sufficient-length", algorithm="HS256"
        ),
        "alg none": unsigned_token("u"),
        "no sub": jwt.encode({"exp": now + 60}, secret, algorithm="HS256"),
    }


@pytest.mark.any_backend
@pytest.mark.parametrize(
    "case", ["missing", "not bearer", "garbage", "expired", "wrong key", "alg none", "no sub"]
)
def test_bad_or_missing_tokens_get_401_on_tus_and_rest(
    client: httpx.Client, server: LiveServer, case: str
) -> None:
    if case == "missing":
        headers: dict[str, str] = {}
    elif case == "not bearer":
        headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    else:
        headers = {"Authorization": f"Bearer {bad_tokens(server)[case]}"}
    tus = client.post(TUS_PATH, headers={**headers, **TUS, "Upload-Length": "5"})
    assert tus.status_code == 401
    rest = client.post("/api/v1/sessions", headers=headers, json={})
    assert rest.status_code == 401
    assert rest.json()["error"]["code"] == "unauthorized"


def test_another_users_head_patch_and_delete_are_refused_and_change_nothing(
    client: httpx.Client, user: User, other_user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 10)
    client.patch(url, headers=patch_headers(user.headers, 0), content=b"12345")
    assert client.head(url, headers=other_user.headers).status_code in (403, 404)
    patch = client.patch(url, headers=patch_headers(other_user.headers, 5), content=b"xxxxx")
    assert patch.status_code in (403, 404)
    assert client.delete(url, headers=other_user.headers).status_code in (403, 404)
    head = client.head(url, headers=user.headers)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "5"


def test_another_users_session_is_not_readable(
    client: httpx.Client, other_user: User, session_id: str
) -> None:
    response = client.get(f"/api/v1/sessions/{session_id}", headers=other_user.bearer)
    assert response.status_code in (403, 404)
    assert "error" in response.json()


def test_options_needs_no_auth_and_health_needs_none(client: httpx.Client) -> None:
    assert client.options(TUS_PATH).status_code == 200
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text


@pytest.mark.any_backend
async def test_cors_preflight_allows_tus_headers_and_exposes_them(server: LiveServer) -> None:
    from video_upload.http.app import create_app

    settings = server.settings.model_copy(update={"cors_allow_origins": "https://app.example"})
    app = create_app(settings)  # no lifespan: CORS answers before any handler runs
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as browser:
        await check_cors(browser)


async def check_cors(browser: httpx.AsyncClient) -> None:
    preflight = await browser.options(
        TUS_PATH,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,upload-checksum,upload-concat,"
            "x-http-method-override,x-request-id,upload-offset,tus-resumable",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    for header in ("authorization", "upload-checksum", "upload-concat", "x-http-method-override"):
        assert header in allowed
    foreign = await browser.options(
        TUS_PATH,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PATCH"},
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers
    simple = await browser.get("/healthz", headers={"Origin": "https://app.example"})
    exposed = simple.headers["Access-Control-Expose-Headers"].lower()
    for header in ("upload-offset", "upload-expires", "tus-checksum-algorithm", "location"):
        assert header in exposed


def test_patch_and_head_answers_carry_cors_headers_for_an_allowed_origin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # CORS does not depend on the back ends: one server, SQLite and the local store.
    settings = make_settings(
        request,
        tmp_path_factory.mktemp("cors"),
        "sqlite-local",
        cors_allow_origins="https://app.example",
    )
    browser_server = start_server("cors", settings)
    try:
        user = new_user(browser_server)
        origin = {"Origin": "https://app.example"}
        with httpx.Client(base_url=browser_server.base_url, timeout=30) as browser:
            session = browser.post("/api/v1/sessions", json={}, headers=user.bearer).json()["id"]
            url = create_upload(browser, {**user.headers, **origin}, str(session), 10)
            patched = browser.patch(
                url, headers={**patch_headers(user.headers, 0), **origin}, content=b"0123456789"
            )
            head = browser.head(url, headers={**user.headers, **origin})
    finally:
        browser_server.stop()
    for answer in (patched, head):
        assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "upload-offset" in answer.headers["Access-Control-Expose-Headers"].lower()
    assert patched.status_code == 204
    assert head.headers["Upload-Offset"] == "10"
