"""A real `video-upload serve` holds its own against hostile clients with its default server
limits: it refuses an oversized head, closes idle kept-alive connections, and ends a stalled PATCH
at NETWORK_TIMEOUT_SECONDS. Every wait below is on something the client can observe (an answer,
the connection closing), each with a deadline.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest

from tests.support.nodes import Node
from tests.support.raw_http import SLACK, read_response, read_until_closed, request_head
from tests.support.tus import auth, metadata, patch_headers
from video_upload.http.server import DEFAULT_LIMITS

SECRET = "hostile-connections-secret-0123456789"


# -- `video-upload serve` -------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A real `video-upload serve`: the default server limits, NETWORK_TIMEOUT_SECONDS=1."""
    node = Node(
        env={"JWT_SECRET": SECRET, "NETWORK_TIMEOUT_SECONDS": "1"},
        workdir=tmp_path_factory.mktemp("served"),
    )
    node.start(timeout=180)
    yield node
    node.stop()


def test_serve_refuses_an_oversized_head_and_closes_idle_connections(served: Node) -> None:
    host, port = "127.0.0.1", served.port
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * DEFAULT_LIMITS.max_head_bytes
        )
        received, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert received.startswith(b"HTTP/1.1 431 "), received[:100]
    assert closed is not None
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(request_head("GET", "/healthz", {}))
        assert read_response(sock, time.monotonic() + SLACK)[0] == 200
        answered = time.monotonic()
        _, closed = read_until_closed(sock, answered + DEFAULT_LIMITS.keep_alive_timeout + SLACK)
    assert closed is not None
    assert closed - answered >= DEFAULT_LIMITS.keep_alive_timeout - 0.5


def test_serve_ends_a_stalled_patch_at_network_timeout_seconds(served: Node) -> None:
    headers = auth(jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET))
    with httpx.Client(base_url=served.base_url, timeout=30) as client:
        session = client.post("/api/v1/sessions", json={"name": "s"}, headers=headers)
        created = client.post(
            "/api/v1/videos/tus",
            headers={
                **headers,
                "Upload-Length": "100",
                "Upload-Metadata": metadata(session_id=session.json()["id"], filename="a.mp4"),
            },
        )
    url = created.headers["Location"]
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        head = request_head("PATCH", url, {**patch_headers(headers, 0), "Content-Length": "100"})
        sock.sendall(head + b"z" * 40)
        started = time.monotonic()
        status, answer, _ = read_response(sock, started + 1.0 + SLACK)
    assert status == 204
    assert answer["upload-offset"] == "40"
    assert time.monotonic() - started < 1.0 + SLACK
