"""The service as a real process: start-up on embedded defaults, graceful shutdown."""

from __future__ import annotations

import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support.nodes import Node
from tests.support.tus import TUS_PATH, auth, metadata, patch_headers, pattern


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = Node(env={"JWT_SECRET": "lifecycle-secret-0123456789abcdef"}, workdir=tmp_path)
    yield node
    node.stop()


def token(user: str) -> str:
    claims = {"sub": user, "exp": int(time.time()) + 600}
    return jwt.encode(claims, "lifecycle-secret-0123456789abcdef", algorithm="HS256")


def new_upload(base_url: str, headers: dict[str, str], length: int) -> str:
    session = httpx.post(f"{base_url}/api/v1/sessions", headers=headers, json={})
    created = httpx.post(
        base_url + TUS_PATH,
        headers={
            **headers,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(session_id=session.json()["id"]),
        },
    )
    assert created.status_code == 201, created.text
    # the path alone: the tests send it to whichever node they choose
    return httpx.URL(created.headers["Location"]).path


def writer_holds_lease(node: Node, upload_id: str, timeout: float = 20) -> bool:
    """Whether a request is writing to the upload: its lease is taken (read from the database)."""
    deadline = time.monotonic() + timeout
    with sqlite3.connect(node.workdir / "data" / "video-upload.db") as db:
        while time.monotonic() < deadline:
            row = db.execute(
                "SELECT lock_owner FROM videos WHERE upload_id = ?", (upload_id,)
            ).fetchone()
            if row and row[0]:
                return True
            time.sleep(0.05)
    return False


def test_serve_on_embedded_defaults_creates_database_and_storage(node: Node) -> None:
    node.start()
    assert httpx.get(f"{node.base_url}/readyz").json()["status"] == "ready"
    assert (node.workdir / "data" / "video-upload.db").exists()
    assert (node.workdir / "data" / "uploads").is_dir()


def test_sigterm_saves_a_stalled_patch_and_exits_promptly(node: Node) -> None:
    node.start()
    headers = auth(token("mia"))
    data = pattern(2 * 1024 * 1024, seed=21)
    url = new_upload(node.base_url, headers, len(data))
    delivered = 512 * 1024
    request = [
        f"PATCH {url} HTTP/1.1",
        f"Host: 127.0.0.1:{node.port}",
        f"Content-Length: {len(data)}",
    ]
    request += [f"{name}: {value}" for name, value in patch_headers(headers, 0).items()]
    with socket.create_connection(("127.0.0.1", node.port)) as stalled:
        stalled.sendall(("\r\n".join(request) + "\r\n\r\n").encode() + data[:delivered])
        assert writer_holds_lease(node, url.rsplit("/", 1)[1])
        began = time.monotonic()
        exit_code = node.terminate(timeout=30)
        elapsed = time.monotonic() - began
        stalled.settimeout(5)
        answer = stalled.recv(4096).decode(errors="replace")
    assert exit_code in (0, -signal.SIGTERM), node.log()  # uvicorn re-raises the signal
    assert elapsed < 15, f"shutdown took {elapsed:.1f}s"
    assert answer.startswith("HTTP/1.1 204"), answer
    saved = int(answer.lower().split("upload-offset:")[1].split("\r\n")[0])
    assert saved == delivered
    node.start()
    head = httpx.head(node.base_url + url, headers=headers)
    assert head.headers["Upload-Offset"] == str(saved)
    rest = httpx.patch(
        node.base_url + url, headers=patch_headers(headers, saved), content=data[saved:], timeout=60
    )
    assert rest.status_code == 204, rest.text


def children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def test_serve_with_workers_runs_that_many_processes_sharing_uploads(node: Node) -> None:
    node.start("--workers", "2")
    assert node.process is not None
    workers = [
        child
        for child in children_of(node.process.pid)
        if b"multiprocessing" in Path(f"/proc/{child}/cmdline").read_bytes()
        or b"video_upload" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]
    assert len(workers) >= 2, workers
    headers = auth(token("ana"))
    data = pattern(3 * 1024 * 1024 + 5, seed=22)
    url = new_upload(node.base_url, headers, len(data))
    offset = 0
    with (
        httpx.Client(base_url=node.base_url, timeout=60) as first,
        httpx.Client(base_url=node.base_url, timeout=60) as second,
    ):
        for index, start in enumerate(range(0, len(data), 256 * 1024)):
            client = (first, second)[index % 2]  # two connections, spread over the workers
            response = client.patch(
                url,
                headers=patch_headers(headers, offset),
                content=data[start : start + 256 * 1024],
            )
            assert response.status_code == 204, response.text
            offset = int(response.headers["Upload-Offset"])
        upload_id = url.rsplit("/", 1)[1]
        done = first.post(
            "/api/v1/videos/upload/complete", json={"upload_id": upload_id}, headers=headers
        )
        assert done.status_code == 200, done.text
        content = second.get(f"/api/v1/videos/{done.json()['id']}/content", headers=headers)
    assert content.content == data
