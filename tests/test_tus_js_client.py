"""The documentation's JavaScript flow, run by the real tus-js-client (Node) against a live server.

`tests/js/doc_flow.mjs` does REST init, `new tus.Upload(file, {endpoint: upload_url, ...})` and
REST complete from `onSuccess`, exactly as the documentation shows; `tests/js/parallel_flow.mjs`
uses `parallelUploads: 4` against the plain tus endpoint (partial uploads, then a final upload).
The bytes are read back through the REST content endpoint, whole and by range.

Node and `tests/js/node_modules` (`npm ci` in tests/js, done by `make setup`) are required when
CI=true; elsewhere these tests skip without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.tus import TUS_PATH, pattern

JS_DIR = Path(__file__).parent / "js"
IN_CI = os.environ.get("CI", "").lower() == "true"
MIB = 1024 * 1024
# Several 5 MiB chunks, and a last one that is not a whole chunk.
FILE_SIZE = 12 * MIB + 12_345
SCRIPT_TIMEOUT_SECONDS = 240


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        problem = "node is not on PATH"
    elif not (JS_DIR / "node_modules" / "tus-js-client").is_dir():
        problem = "tests/js/node_modules is missing: run `npm ci` in tests/js (make setup-js)"
    else:
        return path
    if IN_CI:
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture
def video_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = pattern(FILE_SIZE, seed=7)
    path = tmp_path / "practice_video.mp4"
    path.write_bytes(data)
    return path, data


def run_script(
    node: str, script: str, server: LiveServer, user: User, session_id: str, file: Path
) -> dict[str, Any]:
    completed = subprocess.run(
        [
            node,
            str(JS_DIR / script),
            "--base-url",
            server.base_url,
            "--token",
            user.token,
            "--session-id",
            session_id,
            "--file",
            str(file),
            "--duration",
            "180",
        ],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{script} failed ({completed.returncode}):\n{completed.stderr}\n{completed.stdout}"
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_content_matches(client: httpx.Client, user: User, video_id: str, data: bytes) -> None:
    url = f"/api/v1/videos/{video_id}/content"
    whole = client.get(url, headers=user.bearer)
    assert whole.status_code == 200, whole.text
    assert int(whole.headers["Content-Length"]) == len(data)
    assert sha256(whole.content) == sha256(data)
    # A range across both 5 MiB chunk boundaries.
    start, end = 5 * MIB - 100, 10 * MIB + 99
    ranged = client.get(url, headers={**user.bearer, "Range": f"bytes={start}-{end}"})
    assert ranged.status_code == 206, ranged.text
    assert ranged.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
    assert sha256(ranged.content) == sha256(data[start : end + 1])
    tail = client.get(url, headers={**user.bearer, "Range": "bytes=-1000"})
    assert tail.status_code == 206, tail.text
    assert sha256(tail.content) == sha256(data[-1000:])


def test_documented_js_flow_uploads_to_the_initialised_upload_and_completes_it(
    node: str,
    server: LiveServer,
    client: httpx.Client,
    user: User,
    session_id: str,
    video_file: tuple[Path, bytes],
) -> None:
    path, data = video_file
    result = run_script(node, "doc_flow.mjs", server, user, session_id, path)

    upload_id = result["upload_id"]
    assert result["upload_url"] == f"{server.base_url}{TUS_PATH}/{upload_id}"
    # tus-js-client kept the initialised upload (the POST adopted it) instead of making another.
    assert result["tus_url"] == result["upload_url"]
    assert result["status"] == "completed"

    video = client.get(f"/api/v1/videos/{result['video_id']}", headers=user.bearer)
    assert video.status_code == 200, video.text
    record = video.json()
    assert record["upload_id"] == upload_id
    assert record["session_id"] == session_id
    assert record["filename"] == "practice_video.mp4"
    assert record["size"] == len(data)
    assert record["status"] == "completed"

    listed = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer)
    assert [item["id"] for item in listed.json()] == [result["video_id"]]
    assert_content_matches(client, user, result["video_id"], data)


def test_js_parallel_upload_concatenates_partials_into_one_session_video(
    node: str,
    server: LiveServer,
    client: httpx.Client,
    user: User,
    session_id: str,
    video_file: tuple[Path, bytes],
) -> None:
    path, data = video_file
    result = run_script(node, "parallel_flow.mjs", server, user, session_id, path)

    final_url = result["upload_url"]
    assert final_url == f"{server.base_url}{TUS_PATH}/{result['upload_id']}"
    head = client.head(final_url, headers=user.headers)
    assert head.status_code == 200
    assert head.headers["Upload-Concat"].startswith("final;")
    assert len(head.headers["Upload-Concat"].removeprefix("final;").split()) == 4
    assert head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Upload-Offset"] == str(len(data))

    done = client.post(
        "/api/v1/videos/upload/complete",
        json={"upload_id": result["upload_id"]},
        headers=user.bearer,
    )
    assert done.status_code == 200, done.text
    video = done.json()
    assert video["session_id"] == session_id
    assert video["size"] == len(data)
    assert video["status"] == "completed"

    # The partial uploads are not videos of the session; only the final one is.
    listed = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer)
    assert [item["id"] for item in listed.json()] == [video["id"]]
    assert_content_matches(client, user, video["id"], data)
