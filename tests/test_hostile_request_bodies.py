"""Clients that would hold the server with a request body or its answer: PATCH bodies that stall
or trickle below the minimum rate (and one that is slow but fast enough), bodies behind an early
answer, and an answer nobody reads. Each is cut off by the server itself, on its own clock, and
what arrived is kept.

The server runs as `video-upload serve` configures it (`http.server.server_options`), in process
with short limits (tests/support/guarded_server.py). Every wait below is on something the client
can observe (an answer, the connection closing), each with a deadline.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time

import httpx
import pytest

from tests.support.guarded_server import (
    LIMITS,
    NETWORK_TIMEOUT,
    GuardedServer,
)

# fixtures, imported by name for pytest to find them
from tests.support.guarded_server import guarded as guarded
from tests.support.raw_http import SLACK, read_response, read_until_closed, request_head
from tests.support.tus import auth, metadata, patch_headers, pattern

MIB = 1024 * 1024


def new_upload(server: GuardedServer, length: int) -> tuple[str, dict[str, str]]:
    """A fresh user's upload of `length` bytes: its URL and the user's tus headers."""
    headers = auth(server.token(f"user-{secrets.token_hex(4)}"))
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        session = client.post("/api/v1/sessions", json={"name": "scales"}, headers=headers)
        assert session.status_code == 201, session.text
        created = client.post(
            "/api/v1/videos/tus",
            headers={
                **headers,
                "Upload-Length": str(length),
                "Upload-Metadata": metadata(session_id=session.json()["id"], filename="t.mp4"),
            },
        )
        assert created.status_code == 201, created.text
    return created.headers["Location"], headers


def offset_of(url: str, headers: dict[str, str]) -> int:
    head = httpx.head(url, headers=headers, timeout=30)
    assert head.status_code == 200, head.text
    return int(head.headers["Upload-Offset"])


# -- request bodies and answers -------------------------------------------------------------


@pytest.mark.parametrize("sent", [300, 0])
def test_a_patch_whose_body_stalls_ends_at_the_network_timeout_and_keeps_what_arrived(
    guarded: GuardedServer, sent: int
) -> None:
    """Headers and `sent` bytes of a 1,000-byte body, then nothing: the PATCH ends after
    NETWORK_TIMEOUT_SECONDS with the bytes it received committed, the connection is closed, and
    the upload can be resumed at once (its lock and lease were let go)."""
    data = pattern(1000, seed=sent)
    url, headers = new_upload(guarded, len(data))
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 0), "Content-Length": str(len(data))}
        )
        sock.sendall(head + data[:sent])
        started = time.monotonic()
        status, answer, _ = read_response(sock, started + NETWORK_TIMEOUT + SLACK)
        ended = time.monotonic()
        _, closed = read_until_closed(sock, ended + SLACK)
    assert status == 204
    assert answer["upload-offset"] == str(sent)
    assert answer["connection"] == "close"
    assert closed is not None
    assert NETWORK_TIMEOUT - 0.2 <= ended - started <= NETWORK_TIMEOUT + SLACK

    assert offset_of(url, headers) == sent
    rest = httpx.patch(url, headers=patch_headers(headers, sent), content=data[sent:], timeout=30)
    assert rest.status_code == 204, rest.text
    assert rest.headers["Upload-Offset"] == str(len(data))


class PieceSender:
    """Sends a request head, then `piece` bytes of the body every `interval` seconds, on a
    thread, until the body is sent, the server stops taking it, or `stop` is called."""

    def __init__(
        self, sock: socket.socket, head: bytes, body: bytes, piece: int, interval: float
    ) -> None:
        self.sock, self.head, self.body = sock, head, body
        self.piece, self.interval = piece, interval
        self.sent = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._send, name="piece-sender")

    def _send(self) -> None:
        try:
            self.sock.sendall(self.head)
            while self.sent < len(self.body) and not self._stopped.is_set():
                self.sock.sendall(self.body[self.sent : self.sent + self.piece])
                self.sent += min(self.piece, len(self.body) - self.sent)
                self._stopped.wait(self.interval)
        except OSError:
            pass  # the server closed the connection: what was sent is in `sent`

    def __enter__(self) -> PieceSender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)


def test_a_patch_whose_body_trickles_below_the_minimum_rate_ends_and_keeps_what_arrived(
    guarded: GuardedServer,
) -> None:
    """100 bytes every 0.2 s never waits a whole NETWORK_TIMEOUT for a byte, but brings 500
    bytes a second, under MIN_BODY_RATE_BYTES_PER_SECOND: the PATCH ends after about a
    NETWORK_TIMEOUT of waiting, answers 204 with the bytes it received committed, closes the
    connection, and the upload resumes from there."""
    data = pattern(100_000, seed=3)
    url, headers = new_upload(guarded, len(data))
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 0), "Content-Length": str(len(data))}
        )
        started = time.monotonic()
        with PieceSender(sock, head, data, piece=100, interval=0.2) as sender:
            status, answer, _ = read_response(sock, started + 2 * NETWORK_TIMEOUT + SLACK)
            ended = time.monotonic()
            _, closed = read_until_closed(sock, ended + SLACK)
    assert status == 204
    assert answer["connection"] == "close"
    assert closed is not None
    assert 0 < int(answer["upload-offset"]) <= sender.sent < len(data)
    assert ended - started <= 2 * NETWORK_TIMEOUT + SLACK

    offset = offset_of(url, headers)
    assert offset == int(answer["upload-offset"])
    rest = httpx.patch(
        url, headers=patch_headers(headers, offset), content=data[offset:], timeout=30
    )
    assert rest.status_code == 204, rest.text
    assert rest.headers["Upload-Offset"] == str(len(data))


def test_a_patch_body_slower_than_its_network_but_above_the_minimum_rate_completes(
    guarded: GuardedServer,
) -> None:
    """1,000 bytes every 0.1 s (about 10 kB/s, five times the minimum) for three NETWORK_TIMEOUTs:
    every window of waiting brings enough, so the whole body is taken and the connection kept."""
    data = pattern(30_000, seed=4)
    url, headers = new_upload(guarded, len(data))
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 0), "Content-Length": str(len(data))}
        )
        with PieceSender(sock, head, data, piece=1000, interval=0.1):
            status, answer, _ = read_response(sock, time.monotonic() + 30)
    assert status == 204
    assert answer["upload-offset"] == str(len(data))
    assert answer.get("connection") != "close"


def test_a_body_that_stops_after_an_early_answer_does_not_hold_the_connection(
    guarded: GuardedServer,
) -> None:
    """A PATCH at the wrong offset is answered 409 without its body being read, and its client
    stops sending the body (as tus-js-client in Node does). The answer arrives, with
    `Connection: close`, and the server ends the connection."""
    url, headers = new_upload(guarded, 5 * MIB)
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 1234), "Content-Length": str(5 * MIB)}
        )
        sock.sendall(head + b"x" * 65536)
        status, answer, _ = read_response(sock, time.monotonic() + SLACK)
        _, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert status == 409
    assert answer["connection"] == "close"
    assert closed is not None


def test_a_small_body_answered_early_is_read_and_the_connection_kept(
    guarded: GuardedServer,
) -> None:
    """The rest of a small body behind an early answer is read and dropped, never taken for a
    next request, and the connection serves the next one."""
    url, headers = new_upload(guarded, 1000)
    with guarded.connect() as sock:
        head = request_head("PATCH", url, {**patch_headers(headers, 7), "Content-Length": "100"})
        sock.sendall(head)
        sock.sendall(b"G" * 100)  # the body, in a write of its own
        status, answer, _ = read_response(sock, time.monotonic() + SLACK)
        assert status == 409
        assert answer.get("connection") != "close"
        sock.sendall(request_head("GET", "/healthz", {}))
        assert read_response(sock, time.monotonic() + SLACK)[0] == 200


def test_a_large_body_answered_early_still_gets_its_answer(guarded: GuardedServer) -> None:
    """64 MiB sent at the wrong offset: the server answers 409 with `Connection: close` once it
    has dropped `DRAIN_BYTES`, ends its side of the connection, and goes on reading and dropping
    the body the client is still sending, rather than reset the connection under the answer."""
    size = 64 * MIB
    url, headers = new_upload(guarded, size)
    failures: list[OSError] = []
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 99), "Content-Length": str(size)}
        )

        def send_everything() -> None:
            try:
                sock.sendall(head + bytes(size))
            except OSError as error:
                failures.append(error)

        sender = threading.Thread(target=send_everything, name="sender")
        sender.start()
        status, answer, _ = read_response(sock, time.monotonic() + 30)
        sock.settimeout(SLACK)
        after = sock.recv(65536)  # the server's end of the connection: not a reset
        sender.join(timeout=30)
    assert status == 409
    assert answer["connection"] == "close"
    assert after == b""
    assert not failures, failures


def test_a_connection_whose_answer_nobody_reads_is_dropped_at_the_write_timeout(
    guarded: GuardedServer,
) -> None:
    """A client that asks for a video's bytes and stops reading: once the server's writes have
    waited `write_timeout` seconds for it, the server drops the connection."""
    size = 32 * MIB
    url, headers = new_upload(guarded, size)
    done = httpx.patch(url, headers=patch_headers(headers, 0), content=pattern(size), timeout=60)
    assert done.status_code == 204, done.text
    completed = httpx.post(
        f"{guarded.base_url}/api/v1/videos/upload/complete",
        json={"upload_id": url.rsplit("/", 1)[-1]},
        headers=headers,
        timeout=60,
    )
    assert completed.status_code == 200, completed.text
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect((guarded.host, guarded.port))
    with sock:
        video_id = completed.json()["id"]
        sock.sendall(request_head("GET", f"/api/v1/videos/{video_id}/content", headers))
        # the client's behaviour under test: it reads nothing for a while
        time.sleep(LIMITS.write_timeout + 2.0)
        received, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert closed is not None, "the server kept a connection whose answer nobody read"
    assert len(received) < size
