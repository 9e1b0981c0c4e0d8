"""A counting HTTP proxy in front of the S3 server (SeaweedFS): what the S3 store really sends
over the wire.

It forwards bytes both ways untouched and parses only the request framing of the client side
(request line, headers, a Content-Length or chunked body), so keep-alive connections carrying many
requests are counted exactly. Each request is filed under its S3 operation, inferred from method,
path and query keys (`PUT ?partNumber&uploadId` is UploadPart, `POST ?uploads` is
CreateMultipartUpload, ...).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit


def operation(method: str, target: str, copy_source: bool) -> str:
    """The S3 operation of a path-style request (`/bucket/key?query`)."""
    parts = urlsplit(target)
    keys = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    has_key = "/" in parts.path.strip("/")
    if method == "PUT":
        if "partNumber" in keys:
            return "UploadPartCopy" if copy_source else "UploadPart"
        return ("CopyObject" if copy_source else "PutObject") if has_key else "CreateBucket"
    if method == "POST":
        if "uploads" in keys:
            return "CreateMultipartUpload"
        if "uploadId" in keys:
            return "CompleteMultipartUpload"
        return "DeleteObjects" if "delete" in keys else "POST"
    if method == "GET":
        if has_key:
            return "ListParts" if "uploadId" in keys else "GetObject"
        if "uploads" in keys:
            return "ListMultipartUploads"
        return "ListObjectsV2" if "list-type" in keys else "ListObjects"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "DELETE":
        if "uploadId" in keys:
            return "AbortMultipartUpload"
        return "DeleteObject" if has_key else "DeleteBucket"
    return method


@dataclass
class Counts:
    """Requests and their body bytes per operation; bytes of the responses."""

    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    body_bytes: collections.Counter[str] = field(default_factory=collections.Counter)
    downstream_bytes: int = 0

    def snapshot(self) -> Counts:
        return Counts(self.requests.copy(), self.body_bytes.copy(), self.downstream_bytes)

    def since(self, earlier: Counts) -> Counts:
        return Counts(
            self.requests - earlier.requests,
            self.body_bytes - earlier.body_bytes,
            self.downstream_bytes - earlier.downstream_bytes,
        )

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class CountingProxy:
    """Listens on a loopback port and forwards every connection to `upstream_port`, on an event
    loop of its own in a daemon thread, so the benchmark's loop (and its blocking waits for a
    server to start) never holds up S3 traffic. `with CountingProxy(port) as proxy:`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.counts = Counts()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        tasks = [
            asyncio.create_task(self._requests(reader, up_writer)),
            asyncio.create_task(self._responses(up_reader, writer)),
        ]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for stream in (writer, up_writer):
            stream.close()

    async def _responses(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(256 * 1024):
            self.counts.downstream_bytes += len(data)
            writer.write(data)
            await writer.drain()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            op = operation(method, target, "x-amz-copy-source" in headers)
            self.counts.requests[op] += 1
            writer.write(head)
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = await self._forward_chunked(reader, writer)
            else:
                body = await self._forward(reader, writer, int(headers.get("content-length", 0)))
            self.counts.body_bytes[op] += body
            await writer.drain()

    @staticmethod
    async def _forward(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int
    ) -> int:
        remaining = length
        while remaining:
            data = await reader.read(min(remaining, 256 * 1024))
            if not data:
                raise ConnectionError("client closed mid-body")
            remaining -= len(data)
            writer.write(data)
            await writer.drain()
        return length

    async def _forward_chunked(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> int:
        payload = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            writer.write(size_line)
            if size == 0:
                while True:  # optional trailer lines, then an empty line
                    line = await reader.readuntil(b"\r\n")
                    writer.write(line)
                    if line == b"\r\n":
                        return payload
            await self._forward(reader, writer, size + 2)  # data and its CRLF
            payload += size
