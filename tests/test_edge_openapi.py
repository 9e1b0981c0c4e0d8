"""The OpenAPI document states the rules the service enforces; a session's videos come a page at
a time; `/docs` is Swagger UI from assets the service serves itself (no CDN)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import User
from tests.support.live import LiveServer
from video_upload.http.page import routes as webui

API = "/api/v1"
ROOT = Path(__file__).resolve().parents[1]


def schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


@pytest.mark.any_backend
def test_openapi_states_the_bounds_of_upload_init_with_the_configured_maxima(
    client: httpx.Client, server: LiveServer
) -> None:
    document = client.get("/openapi.json").json()
    init = schema_of(document, "UploadInit")["properties"]

    assert init["file_size"]["exclusiveMinimum"] == 0
    assert init["file_size"]["maximum"] == server.settings.max_upload_size
    assert init["duration_seconds"]["exclusiveMinimum"] == 0
    assert init["duration_seconds"]["maximum"] == server.settings.max_duration_seconds
    assert (init["filename"]["minLength"], init["filename"]["maxLength"]) == (1, 1024)
    content_type = init["content_type"]["anyOf"][0]
    assert content_type["maxLength"] == 255
    assert re.fullmatch(content_type["pattern"], "video/mp4; codecs=avc1")
    assert not re.fullmatch(content_type["pattern"], "video/x\r\nSet-Cookie: a=b")
    name = schema_of(document, "SessionCreate")["properties"]["name"]
    assert name["maxLength"] == 255 and not re.fullmatch(name["pattern"], "a\x00")
    assert "pattern" in schema_of(document, "UploadComplete")["properties"]["upload_id"]


def test_the_stated_bounds_are_the_enforced_ones(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    def init(**values: Any) -> int:
        body = {"session_id": session_id, "filename": "take.mp4", "file_size": 10}
        body.update({"duration_seconds": 10, **values})
        return client.post(f"{API}/videos/upload/init", json=body, headers=user.bearer).status_code

    largest = server.settings.max_upload_size
    longest = server.settings.max_duration_seconds
    assert init(file_size=largest) == 201
    assert init(file_size=largest + 1) == 413
    assert init(file_size=0) == 400
    assert init(duration_seconds=longest) == 201
    assert init(duration_seconds=longest + 0.5) == 400
    assert init(duration_seconds=0) == 400


def test_a_sessions_videos_come_a_page_at_a_time(
    client: httpx.Client, user: User, session_id: str
) -> None:
    made = []
    for index in range(5):
        init = client.post(
            f"{API}/videos/upload/init",
            json={
                "session_id": session_id,
                "filename": f"take{index}.mp4",
                "file_size": 10,
                "duration_seconds": 10,
            },
            headers=user.bearer,
        )
        made.append(init.json()["video_id"])

    seen: list[str] = []
    url: str | None = f"{API}/sessions/{session_id}/videos?limit=2"
    pages = 0
    while url is not None:
        page = client.get(url, headers=user.bearer)
        assert page.status_code == 200, page.text
        assert len(page.json()) <= 2
        seen.extend(video["id"] for video in page.json())
        pages += 1
        link = page.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        if url is not None:
            assert f"cursor={page.headers['X-Next-Cursor']}" in url

    assert pages == 3
    assert seen == made  # oldest first, each once
    whole = client.get(f"{API}/sessions/{session_id}/videos", headers=user.bearer)
    assert [video["id"] for video in whole.json()] == made
    assert "Link" not in whole.headers


@pytest.mark.any_backend
@pytest.mark.parametrize("query", ["limit=0", "limit=501", "cursor=abc", "cursor=-1"])
def test_a_page_size_or_cursor_out_of_bounds_is_422(
    client: httpx.Client, user: User, session_id: str, query: str
) -> None:
    response = client.get(f"{API}/sessions/{session_id}/videos?{query}", headers=user.bearer)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


# -- /docs ---------------------------------------------------------------------------------


def docs_client() -> httpx.AsyncClient:
    """An app as `create_app` makes it once it passes docs_url=None: the page's router serves
    /docs (with FastAPI's defaults, its own /docs, from a CDN, comes first)."""
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(webui.build_router())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://docs")


@pytest.mark.skipif(
    not (ROOT / "web" / webui.SWAGGER_DIST).is_dir(),
    reason="web/node_modules has no swagger-ui-dist: run `make setup`",
)
async def test_docs_is_swagger_ui_from_assets_the_service_serves() -> None:
    async with docs_client() as client:
        page = await client.get("/docs")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        fetched = {asset: await client.get(asset) for asset in assets}

    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    assert "'/openapi.json'" in page.text
    assert assets and all(asset.startswith("/ui/vendor/") for asset in assets)
    assert "cdn" not in page.text.lower()
    for asset, response in fetched.items():
        assert response.status_code == 200, asset
        assert response.content
    bundle = fetched["/ui/vendor/swagger-ui-bundle.js"]
    assert bundle.headers["content-type"].startswith("text/javascript")


async def test_a_missing_swagger_ui_package_says_to_run_make_setup(tmp_path: Path) -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(webui.build_router([tmp_path / "web"]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
        response = await client.get("/ui/vendor/swagger-ui-bundle.js")

    assert response.status_code == 404
    assert "swagger-ui-dist" in response.text and "make setup" in response.text


@pytest.mark.any_backend
def test_the_services_own_docs_load_nothing_from_a_cdn(client: httpx.Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/ui/vendor/swagger-ui-bundle.js" in page.text
