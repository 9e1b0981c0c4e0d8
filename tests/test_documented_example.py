"""The API documentation's JavaScript example, run as written in Node against `video-upload serve`.

`tests/js/documented_example.mjs` is the documentation's code block, last three lines included
(`upload.start(); upload.abort(); upload.start();`), and the first test keeps it so.
`tests/js/run_documented_example.mjs` gives it what a page would: `token`, `sessionId`, `file` and
`videoDuration`, and a `fetch` that resolves its paths against the service's address.

The example must upload, complete, and let Node exit by itself. Its `abort()` comes before the
first `start()` has sent anything, so the second `start()` runs beside the first: two creations
of the same upload, and PATCHes of which one is answered 409 before its body is read. Node's
tus-js-client then stops sending that body and waits for the request to end; the service closes
the connection after such an answer (`http.limits`), which ends it. Before, uvicorn kept the
connection waiting for the rest of the body, and Node never exited.

Node and `tests/js/node_modules` (`npm ci` in tests/js, done by `make setup`) are required when
CI=true, as is the documentation beside the repository (`../shared`); elsewhere these tests skip
without them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support.nodes import Node
from tests.support.tus import pattern

REPO = Path(__file__).resolve().parent.parent
JS_DIR = REPO / "tests" / "js"
DOCUMENTATION = REPO.parent / "shared" / "video-upload-api.md"
EXAMPLE = JS_DIR / "documented_example.mjs"
IN_CI = os.environ.get("CI", "").lower() == "true"
SECRET = "documented-example-secret-0123456789"
MIB = 1024 * 1024
FILE_SIZE = 12 * MIB + 12_345  # three 5 MiB chunks, the last one short
# Node must have finished, and exited, within this long (the upload takes seconds).
NODE_EXIT_SECONDS = 120


def unavailable(problem: str) -> None:
    if IN_CI:
        pytest.fail(problem)
    pytest.skip(problem)


def documented_block(markdown: str) -> str:
    """The code block of the documentation's "Usage Example (JavaScript/React Native)"."""
    found = re.search(
        r"^## Usage Example \(JavaScript/React Native\)\n\n```javascript\n(.*?)^```$",
        markdown,
        re.MULTILINE | re.DOTALL,
    )
    assert found is not None, "the documentation has no JavaScript usage example"
    return found.group(1)


def test_the_example_run_is_the_documentations_code_block() -> None:
    if not DOCUMENTATION.is_file():
        unavailable(f"{DOCUMENTATION} is missing")
    assert EXAMPLE.read_text() == documented_block(DOCUMENTATION.read_text()), (
        "tests/js/documented_example.mjs differs from the documentation's example: copy it again"
    )


@pytest.fixture
def node_binary() -> str:
    path = shutil.which("node")
    if path is None:
        unavailable("node is not on PATH")
    elif not (JS_DIR / "node_modules" / "tus-js-client").is_dir():
        unavailable("tests/js/node_modules is missing: run `npm ci` in tests/js (make setup-js)")
    assert path is not None
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Node]:
    node = Node(env={"JWT_SECRET": SECRET}, workdir=tmp_path)
    node.start(timeout=180)
    yield node
    node.stop()


def test_the_documented_example_uploads_completes_and_node_exits_by_itself(
    node_binary: str, served: Node, tmp_path: Path
) -> None:
    data = pattern(FILE_SIZE, seed=22)
    video = tmp_path / "practice_video.mp4"
    video.write_bytes(data)
    token = jwt.encode({"sub": "documented-user", "exp": int(time.time()) + 3600}, SECRET)
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=served.base_url, headers=bearer, timeout=60) as client:
        session = client.post("/api/v1/sessions", json={"name": "scales"})
        assert session.status_code == 201, session.text
        session_id = session.json()["id"]

        options = {
            "--base-url": served.base_url,
            "--token": token,
            "--session-id": session_id,
            "--file": str(video),
            "--duration": "180",
        }
        argv = [node_binary, "run_documented_example.mjs"]
        argv += [part for option in options.items() for part in option]
        started = time.monotonic()
        try:
            run = subprocess.run(
                argv,
                cwd=JS_DIR,
                capture_output=True,
                text=True,
                timeout=NODE_EXIT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            pytest.fail(
                f"Node had not exited {NODE_EXIT_SECONDS} s after starting the example:\n"
                f"{expired.stdout!r}\n{expired.stderr!r}"
            )
        assert run.returncode == 0, f"{run.stderr}\n{run.stdout}"
        assert "Upload completed" in run.stdout
        assert "Upload failed" not in run.stderr, run.stderr
        assert time.monotonic() - started < NODE_EXIT_SECONDS

        listed = client.get(f"/api/v1/sessions/{session_id}/videos")
        assert listed.status_code == 200, listed.text
        videos = listed.json()
        assert len(videos) == 1, videos
        (record,) = videos
        assert record["status"] == "completed"
        assert record["filename"] == "practice_video.mp4"
        assert record["size"] == len(data)
        content = client.get(f"/api/v1/videos/{record['id']}/content")
        assert content.status_code == 200, content.text
        assert hashlib.sha256(content.content).digest() == hashlib.sha256(data).digest()
