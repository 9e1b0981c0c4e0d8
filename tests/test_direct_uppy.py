"""Uppy's `@uppy/aws-s3` (v5, Companion mode) uploads a real video straight to S3 through the
service's direct-upload routes, in headless Chromium, with no callbacks of its own.

The test runs `web/tests/uppy-direct.mjs` (playwright-core driving Debian's Chromium) against a
live server on SeaweedFS, whose bucket it gives the CORS rules a browser needs (PUT from the
page's origin, the ETag header exposed). The server also serves the test page
(`web/tests/uppy-direct.html`) and Uppy, bundled with esbuild from `web/node_modules` (its
packages are ES modules that import CommonJS ones, which a browser cannot load as they are).
The video is over 5 MiB, so two parts; Uppy is paused with the first in S3 and resumed, and
must then ask which parts S3 holds and send only the second. The video ends completed, probed,
and byte-identical. Without Chromium or node_modules the test is skipped, or fails when
CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Response

from tests.conftest import IN_CI, make_settings, new_user
from tests.support.live import LiveServer, start_server
from tests.support.s3server import pending_multipart_uploads, s3_client
from tests.support.videos import synthetic_video

ROOT = Path(__file__).resolve().parents[1]
WEB_DIR = ROOT / "web"
SCRIPT = WEB_DIR / "tests" / "uppy-direct.mjs"
PAGE = WEB_DIR / "tests" / "uppy-direct.html"
ESBUILD = WEB_DIR / "node_modules" / ".bin" / "esbuild"
UPPY_ENTRY = "export { default as Uppy } from '@uppy/core';\n" + (
    "export { default as AwsS3 } from '@uppy/aws-s3';\n"
)
CHROMIUM = Path("/usr/bin/chromium")
MIB = 1024 * 1024
PACKAGES = ("playwright-core", "esbuild", "@uppy/core", "@uppy/aws-s3")


def prerequisites() -> str | None:
    """Why the browser test cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    for package in PACKAGES:
        if not (WEB_DIR / "node_modules" / package).is_dir():
            return f"{package} is missing from web/node_modules: run `make setup`"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: run `make setup-browser`"
    return None


def uppy_bundle() -> str:
    """@uppy/core and @uppy/aws-s3 as one browser ES module."""
    built = subprocess.run(
        [str(ESBUILD), "--bundle", "--format=esm", "--target=es2022", "--log-level=warning"],
        input=UPPY_ENTRY,
        cwd=WEB_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return built.stdout


def page_router(bundle: str) -> APIRouter:
    """The test page and the bundle, from the server's own (loopback) origin: Chromium lets a
    loopback page reach the loopback S3 server, but not a page of unknown address."""
    router = APIRouter(prefix="/__uppy-direct", include_in_schema=False)

    @router.get("/")
    async def page() -> Response:
        return Response(PAGE.read_text(), media_type="text/html")

    @router.get("/uppy.js")
    async def script() -> Response:
        return Response(bundle, media_type="text/javascript")

    return router


def padded_video(seconds: float, size: int) -> bytes:
    """A real MP4 of `size` bytes: a synthetic video and a top-level `free` box after it, which
    players and FFmpeg skip (MP4 files may carry such boxes anywhere)."""
    video = synthetic_video(seconds=seconds)
    padding = size - len(video) - 8
    assert padding > 0
    return video + struct.pack(">I", padding + 8) + b"free" + os.urandom(padding)


@pytest.fixture(scope="module")
def uppy_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    missing = prerequisites()
    if missing is not None:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    base = tmp_path_factory.mktemp("direct-uppy")
    settings = make_settings(request, base, "sqlite-s3", video_probe=True)
    live = start_server("direct-uppy", settings, routers=[page_router(uppy_bundle())])
    yield live
    live.stop()


def allow_browser_uploads(server: LiveServer) -> None:
    """The bucket CORS rules docs/direct-uploads.md asks for, for the page's origin."""
    settings = server.settings
    s3_client(settings.s3_endpoint_url).put_bucket_cors(
        Bucket=settings.s3_bucket_name,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [server.base_url],
                    "AllowedMethods": ["PUT"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 3000,
                }
            ]
        },
    )


def test_uppy_uploads_a_video_straight_to_s3_pauses_and_resumes_from_the_listed_parts(
    uppy_server: LiveServer, tmp_path: Path
) -> None:
    allow_browser_uploads(uppy_server)
    user = new_user(uppy_server)
    video = padded_video(seconds=2.0, size=7 * MIB + 4321)
    path = tmp_path / "take.mp4"
    path.write_bytes(video)
    with httpx.Client(base_url=uppy_server.base_url, headers=user.bearer, timeout=30) as api:
        session = api.post("/api/v1/sessions", json={"name": "uppy"})
        assert session.status_code == 201, session.text
        session_id = session.json()["id"]

        run = subprocess.run(
            ["node", str(SCRIPT)],
            cwd=WEB_DIR,
            env={
                **os.environ,
                "BASE_URL": uppy_server.base_url,
                "TOKEN": user.token,
                "SESSION_ID": session_id,
                "VIDEO_PATH": str(path),
                "DURATION": "2",
                "CHROMIUM": str(CHROMIUM),
            },
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        print(run.stderr)  # the script's steps, with timings (shown with -s or on failure)
        assert run.returncode == 0, run.stderr[-4000:]
        found = json.loads(run.stdout.strip().splitlines()[-1])

        assert found["page_errors"] == [] and found["errors"] == []
        assert found["result"]["failed"] == []
        assert found["parts_while_paused"] == [1]
        # before the pause: created, both parts signed (the second held); after it, Uppy listed
        # the parts S3 held and signed and sent only the second
        before, after = " ".join(found["requests"]).split(" -- resume -- ")
        assert before.split()[0] == "create" and "sign 1" in before and "sign 2" in before
        assert after.split() == ["list", "sign", "2", "complete"]
        assert sorted(found["s3_puts"]) == ["1", "2"]
        assert found["parts_uploaded"] == [1, 2]
        response = found["result"]["successful"][0]["response"]
        video_id = response["body"]["videoId"]
        assert response["uploadURL"] == f"{uppy_server.base_url}/api/v1/videos/{video_id}"

        record = api.get(f"/api/v1/videos/{video_id}").json()
        assert record["status"] == "completed", record
        assert record["size"] == len(video)
        assert record["duration_seconds"] == pytest.approx(2.0, abs=0.2)
        assert record["video_codec"] and record["has_thumbnail"]
        assert record["upload_id"] == found["upload_id"]
        content = api.get(f"/api/v1/videos/{video_id}/content")
        assert content.status_code == 200 and content.content == video
        # and the browser played it through the signed playback URL, without a token
        assert found["playback_ready_state"] >= 2

    settings = uppy_server.settings
    assert pending_multipart_uploads(settings.s3_endpoint_url, settings.s3_bucket_name) == []
