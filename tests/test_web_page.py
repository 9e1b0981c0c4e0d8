"""The upload page at `/`: its routes, and an end-to-end run in headless Chromium.

The browser test runs `web/tests/upload-page.mjs` (playwright-core from `web/node_modules`,
Debian's Chromium at /usr/bin/chromium) against a live server that includes the page's router.
The page records its own test clip with MediaRecorder, uploads it with tus-js-client, pauses
mid-way, resumes, survives a page reload (the same file picked again continues where the server
stopped), and plays the finished video through the signed URL `/playback` gives (the service's
signed content URL on the local store, a presigned URL straight to SeaweedFS on S3), streamed
with Range requests and no token. Screenshots land in `test-artifacts/`.
Without Chromium or node_modules the test is skipped, or fails when CI=true.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import IN_CI, make_settings
from tests.support.live import LiveServer, start_server
from video_upload.config import MIB, Settings
from video_upload.http.app import create_app
from video_upload.http.page import routes as webui

ROOT = Path(__file__).resolve().parents[1]
WEB_DIR = ROOT / "web"
SCRIPT = WEB_DIR / "tests" / "upload-page.mjs"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# The PATCH size of the browser test: small, so the ~1 MB clip takes many PATCHes. On the local
# store the service suggests it (UPLOAD_CHUNK_SIZE, read by the page from its <meta>); on S3 it
# suggests a whole part and the page is opened with ?chunkSize= instead: both ways are used.
CHUNK_SIZE = 65536


def page_client(web_folders: list[Path] | None = None) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(webui.build_router(web_folders))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://page")


async def test_page_and_assets_are_served() -> None:
    async with page_client() as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script src="/ui/vendor/tus.min.js">' in page.text
        script = await client.get("/ui/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert (await client.get("/ui/style.css")).headers["content-type"].startswith("text/css")


async def test_the_page_uploads_in_the_chunk_size_the_service_suggests(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        storage_backend="s3",
        s3_part_size=8 * MIB,  # so UPLOAD_CHUNK_SIZE, unset, suggests 8 MiB
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://page") as client:
        page = await client.get("/")
    assert '<meta name="upload-chunk-size" content="8388608">' in page.text


async def test_only_listed_assets_are_served() -> None:
    async with page_client() as client:
        assert (await client.get("/ui/index.html")).status_code == 404
        assert (await client.get("/ui/..%2Froutes.py")).status_code == 404
        assert (await client.get("/ui/other.js")).status_code == 404


async def test_missing_tus_bundle_says_to_run_make_setup(tmp_path: Path) -> None:
    async with page_client([tmp_path / "web"]) as client:
        response = await client.get("/ui/vendor/tus.min.js")
    assert response.status_code == 404
    assert "make setup" in response.text


async def test_installed_tus_bundle_is_served_locally(tmp_path: Path) -> None:
    bundle = tmp_path / "web" / webui.TUS_BUNDLE
    bundle.parent.mkdir(parents=True)
    bundle.write_text("/* tus */")
    async with page_client([tmp_path / "web"]) as client:
        response = await client.get("/ui/vendor/tus.min.js")
    assert response.status_code == 200
    assert response.text == "/* tus */"


# -- the browser ---------------------------------------------------------------------------


def browser_prerequisites() -> str | None:
    """Why the browser test cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (WEB_DIR / "node_modules" / "playwright-core").is_dir():
        return "web/node_modules is missing: run `make setup`"
    if not (WEB_DIR / webui.TUS_BUNDLE).is_file():
        return "tus-js-client is missing from web/node_modules: run `make setup`"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: run `make setup-browser`"
    return None


@pytest.fixture(scope="module", params=["sqlite-local", "sqlite-s3"])
def page_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    missing = browser_prerequisites()
    if missing is not None:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    backend: str = request.param
    suggested = {"upload_chunk_size": CHUNK_SIZE} if backend.endswith("-local") else {}
    settings = make_settings(request, tmp_path_factory.mktemp("web-page"), backend, **suggested)
    live = start_server(f"web-page-{backend}", settings)
    yield live
    live.stop()


def test_upload_pause_resume_and_play_in_a_browser(page_server: LiveServer) -> None:
    token = page_server.token(f"user-{secrets.token_hex(6)}")
    ARTIFACTS.mkdir(exist_ok=True)
    environment = {
        **os.environ,
        "BASE_URL": page_server.base_url,
        "TOKEN": token,
        "ARTIFACT_DIR": str(ARTIFACTS),
        "CHROMIUM": str(CHROMIUM),
        "CHUNK_SIZE": str(CHUNK_SIZE),
        "PAGE_QUERY": ""
        if page_server.settings.upload_chunk_size == CHUNK_SIZE
        else (f"?chunkSize={CHUNK_SIZE}"),
    }
    run = subprocess.run(
        ["node", str(SCRIPT)],
        cwd=WEB_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    print(run.stderr)  # the script's steps, with timings (shown with -s or on failure)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])

    assert result["page_errors"] == []
    assert 0 < result["progress_before_pause"] < 100
    assert 0 < result["paused_offset"] < result["clip_size"]
    # After the reload, the first PATCH continued from the server's offset: no new upload.
    assert result["first_offset_after_reload"] == result["reload_offset"] > result["paused_offset"]
    assert result["final_videos"] == [
        {"id": result["video_id"], "status": "completed", "size": result["clip_size"]}
    ]
    assert result["player"]["readyState"] >= 2
    assert result["player"]["width"] == 640

    # It played from the signed URL, streamed: no request for the bytes carried the token, and
    # the player asked for ranges (Chromium starts with `bytes=0-`), each answered 200 or 206.
    assert result["playback_answers"] == [200]
    src = urlsplit(result["player"]["src"])
    if page_server.settings.storage_backend == "s3":
        assert f"{src.scheme}://{src.netloc}" == page_server.settings.s3_endpoint_url
    else:
        assert f"{src.scheme}://{src.netloc}" == page_server.base_url
        assert src.path == f"/api/v1/videos/{result['video_id']}/content"
        assert "signature=" in src.query
    media = result["media_requests"]
    assert media, "the player fetched nothing"
    assert all(request["url"] == result["player"]["src"] for request in media)
    assert not [request for request in media if request["authorization"]]
    assert any(request["range"] for request in media)
    assert {request["status"] for request in media} <= {200, 206}

    clip = Path(result["clip_path"]).read_bytes()
    content = httpx.get(
        f"{page_server.base_url}/api/v1/videos/{result['video_id']}/content",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert content.status_code == 200
    assert hashlib.sha256(content.content).digest() == hashlib.sha256(clip).digest()
    for name in ("web-page.png", "web-page-phone.png", "web-page-paused.png"):
        assert (ARTIFACTS / name).stat().st_size > 0
