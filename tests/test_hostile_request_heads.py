"""Clients that would hold the server with a request head: one over the size limit, a huge one,
too many header lines, one trickled a line a second, none at all, or none after an answer on a
kept-alive connection. Each is cut off by the server itself, on its own clock.

The server runs as `video-upload serve` configures it (`http.server.server_options`), in process
with short limits (tests/support/guarded_server.py). Every wait below is on something the client
can observe (an answer, the connection closing), each with a deadline.
"""

from __future__ import annotations

import threading
import time

import httpx

from tests.support.guarded_server import (
    LIMITS,
    GuardedServer,
)

# fixtures, imported by name for pytest to find them
from tests.support.guarded_server import guarded as guarded
from tests.support.raw_http import SLACK, read_response, read_until_closed, request_head
from video_upload.http.limits import MAX_HEADER_COUNT

MIB = 1024 * 1024


# -- request heads --------------------------------------------------------------------------


def test_a_head_over_the_size_limit_is_refused_with_431_and_the_connection_closed(
    guarded: GuardedServer,
) -> None:
    with guarded.connect() as sock:
        # a head that never ends, a little past the limit
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * LIMITS.max_head_bytes)
        received, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert received.startswith(b"HTTP/1.1 431 "), received[:100]
    assert closed is not None


def test_a_huge_head_is_cut_off_early_and_other_clients_are_served_meanwhile(
    guarded: GuardedServer,
) -> None:
    """A client sending a 256 MiB header: the server stops reading it a little past the limit
    (the client's writes fail), and answers everybody else promptly all the while."""
    sent = 0
    outcome: list[BaseException] = []

    def flood() -> None:
        nonlocal sent
        piece = b"a" * 65536
        with guarded.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            try:
                while sent < 256 * MIB:
                    sock.sendall(piece)
                    sent += len(piece)
            except OSError as error:  # the server closed the connection
                outcome.append(error)

    flooder = threading.Thread(target=flood, name="flooder")
    flooder.start()
    slowest = 0.0
    with httpx.Client(base_url=guarded.base_url, timeout=10) as client:
        while flooder.is_alive() and slowest < 10:
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
    flooder.join(timeout=30)
    assert outcome, "the server read the whole 256 MiB header"
    assert sent < 16 * MIB  # what the socket buffers hold, not the header
    assert slowest < 2.0


def test_more_header_lines_than_allowed_are_refused_with_431(guarded: GuardedServer) -> None:
    many = {f"X-Line-{n}": "v" for n in range(MAX_HEADER_COUNT)}  # with Host: one too many
    with guarded.connect() as sock:
        sock.sendall(request_head("GET", "/healthz", many))
        status, headers, _ = read_response(sock, time.monotonic() + SLACK)
        _, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert status == 431
    assert headers["connection"] == "close"
    assert closed is not None
    allowed = {f"X-Line-{n}": "v" for n in range(MAX_HEADER_COUNT - 1)}
    with guarded.connect() as sock:
        sock.sendall(request_head("GET", "/healthz", allowed))
        assert read_response(sock, time.monotonic() + SLACK)[0] == 200


def test_a_head_sent_one_line_a_second_is_cut_off_at_the_head_timeout(
    guarded: GuardedServer,
) -> None:
    with guarded.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = None
        for line in range(int(LIMITS.head_timeout + SLACK)):
            try:
                sock.sendall(f"X-Slow-{line}: v\r\n".encode())
            except OSError:
                closed = time.monotonic()
                break
            # the client's pace: a line a second, unless the server closes first
            _, closed = read_until_closed(sock, time.monotonic() + 1.0)
            if closed is not None:
                break
    assert closed is not None, "a head trickled a line a second was never cut off"
    assert LIMITS.head_timeout - 0.5 <= closed - started <= LIMITS.head_timeout + SLACK


def test_a_connection_that_sends_nothing_is_closed_at_the_head_timeout(
    guarded: GuardedServer,
) -> None:
    with guarded.connect() as sock:
        started = time.monotonic()
        received, closed = read_until_closed(sock, started + LIMITS.head_timeout + SLACK)
    assert received == b""
    assert closed is not None, "an unused connection was kept"
    assert closed - started >= LIMITS.head_timeout - 0.5


def test_an_idle_kept_alive_connection_is_closed_at_the_keep_alive_timeout(
    guarded: GuardedServer,
) -> None:
    with guarded.connect() as sock:
        sock.sendall(request_head("GET", "/healthz", {}))
        status, headers, _ = read_response(sock, time.monotonic() + SLACK)
        assert status == 200
        assert headers.get("connection") != "close"
        answered = time.monotonic()
        _, closed = read_until_closed(sock, answered + LIMITS.keep_alive_timeout + SLACK)
    assert closed is not None, "an idle kept-alive connection was kept"
    assert closed - answered >= LIMITS.keep_alive_timeout - 0.5
