"""Raw HTTP/1.1 over a socket, for tests of clients that misbehave where an HTTP library cannot."""

from __future__ import annotations

import socket
import time

# How much later than its limit a cut-off may come on a loaded machine.
SLACK = 5.0


def request_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_until_closed(sock: socket.socket, deadline: float) -> tuple[bytes, float | None]:
    """Everything the server sends until it closes the connection, and when it closed (None
    if it was still open at `deadline`, a `time.monotonic()` value). A reset counts as closed."""
    received = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return received, None
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return received, None
        except ConnectionResetError:
            return received, time.monotonic()
        if not data:
            return received, time.monotonic()
        received += data


def read_response(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body (or none): status, headers, body."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        data = sock.recv(65536)
        assert data, f"the connection closed before a whole response head: {buffer!r}"
        buffer += data
    head, _, body = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        data = sock.recv(65536)
        assert data, "the connection closed inside the response body"
        body += data
    return int(status_line.split()[1]), headers, body
