"""HEAD and tus-creation latency, one request at a time over one kept-alive connection, for the
raw sink and the service on SQLite and PostgreSQL (docs/performance.md)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from bench.client import TUS_PATH, parse_head, tus_metadata
from bench.servers import Server, each_server
from bench.stats import latency_summary

WARMUP = 50


class RawResponse(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class ProtocolError(RuntimeError):
    """The server's answer was not one this client reads (or the connection closed)."""


class RawConnection:
    """A lean HTTP/1.1 client: prepared request bytes over a blocking socket (no Nagle), and
    only status, headers and a `Content-Length` body read back. A general client's own Python
    costs about a millisecond per request on a small machine, several times a HEAD's cost to
    the server (the raw sink's HEAD: 1.4 to 1.6 ms through httpx, 0.22 ms through this)."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"need http://host:port, got {base_url!r}")
        self.host = f"{parts.hostname}:{parts.port}"
        self._socket = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self._socket.close()

    def prepare(self, method: str, path: str, headers: dict[str, str]) -> bytes:
        """The request's bytes, to be sent with `send` as often as needed (no body)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, request: bytes, *, head: bool = False) -> RawResponse:
        """Send a prepared request and read its whole response (`head`: no body follows)."""
        self._socket.sendall(request)
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._receive()
        status_line, headers = parse_head(self._buffer[:end])
        self._buffer = self._buffer[end + 4 :]
        try:
            status = int(status_line.split(" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"bad status line {status_line!r}") from None
        if "chunked" in headers.get("transfer-encoding", ""):
            raise ProtocolError("chunked responses are not read by this client")
        length = 0 if head else int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._receive()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return RawResponse(status, headers, body)

    def _receive(self) -> None:
        if not (data := self._socket.recv(65536)):
            raise ProtocolError("the server closed the connection")
        self._buffer += data


def _timed(call: Callable[[], RawResponse], expected: int, count: int) -> dict[str, float]:
    samples = []
    for index in range(WARMUP + count):
        started = time.perf_counter()
        response = call()
        if index >= WARMUP:
            samples.append(time.perf_counter() - started)
        if response.status != expected:
            raise RuntimeError(f"expected {expected}, got {response.status}: {response.body!r}")
    return latency_summary(samples)


def _time_requests(
    server: Server, headers: dict[str, str], create: dict[str, str], url: str, count: int
) -> dict[str, Any]:
    with RawConnection(server.base_url) as connection:
        head = connection.prepare("HEAD", url, headers)
        # one prepared request serves every creation: each makes a new upload of the session
        creation = connection.prepare("POST", TUS_PATH, {**headers, **create})
        return {
            "head": _timed(lambda: connection.send(head, head=True), 200, count),
            "create": _timed(lambda: connection.send(creation), 201, count),
        }


async def measure(count: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    async def one(server: Server) -> dict[str, Any]:
        async with server.client(connections=1) as client:
            user = await server.user(client)
            url = await user.create(1024)
        metadata = tus_metadata(session_id=user.session_id, filename="latency.mp4")
        create = {"Upload-Length": "1024", "Upload-Metadata": metadata, "Content-Length": "0"}
        entry = await asyncio.to_thread(_time_requests, server, user.headers, create, url, count)
        head, creates = entry["head"], entry["create"]
        log(
            f"  {server.name:<16} HEAD p50 {head['p50_ms']:.2f} ms p99 {head['p99_ms']:.2f} ms | "
            f"create p50 {creates['p50_ms']:.2f} ms p99 {creates['p99_ms']:.2f} ms"
        )
        return entry

    keys = {"sink": "sink", "sqlite": "sqlite", "postgres": "postgres"}
    return {"requests": count, **await each_server(keys, one, log)}
