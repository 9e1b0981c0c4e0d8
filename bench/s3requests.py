"""S3 requests and bytes per uploaded MiB, by PATCH size: the service talks to SeaweedFS through
a proxy that files every request under its S3 operation (docs/performance.md)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bench.client import make_payload, parse_head
from bench.seaweedfs import SeaweedFS
from bench.servers import Server, service
from bench.stats import MIB

PART_SIZE = 5 * MIB
SIZE = 35 * MIB  # a multiple of 1, 5 and 7 MiB
CHUNKS = (1 * MIB, 5 * MIB, 7 * MIB)


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


class CountingProxy:
    """Forwards every connection to `upstream_port` untouched, reading only the framing of the
    requests (botocore sends no chunked bodies), so each request on a kept-alive connection is
    counted. It runs its own event loop in a daemon thread, so the benchmark's loop (and its
    blocking waits for a server to start) never holds up S3 traffic."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[tuple[str, int]] = []  # (S3 operation, body bytes), in order
        self.downstream_bytes = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        start = asyncio.start_server(self._handle, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

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
            self.downstream_bytes += len(data)
            writer.write(data)
            await writer.drain()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            request_line, headers = parse_head(head[:-4])
            if "chunked" in headers.get("transfer-encoding", "").lower():
                raise ConnectionError("the proxy does not read chunked request bodies")
            method, target = request_line.split(" ")[:2]
            remaining = int(headers.get("content-length", 0))
            op = operation(method, target, "x-amz-copy-source" in headers)
            self.requests.append((op, remaining))
            writer.write(head)
            while remaining:
                if not (data := await reader.read(min(remaining, 256 * 1024))):
                    raise ConnectionError("client closed mid-body")
                remaining -= len(data)
                writer.write(data)
                await writer.drain()
            await writer.drain()


async def one_upload(server: Server, proxy: CountingProxy, size: int, chunk: int) -> dict[str, Any]:
    """One upload in `chunk`-byte PATCHes; the requests are read between PATCHes, and the last
    PATCH (which also finishes the upload) is counted apart from the others."""
    payload = make_payload(size)
    async with server.client() as client:
        user = await server.user(client)
        start, received = len(proxy.requests), proxy.downstream_bytes
        url = await user.create(size)
        creation = len(proxy.requests) - start
        per_patch: list[list[str]] = []  # the operations of each PATCH
        offset = 0
        while offset < size:
            mark = len(proxy.requests)
            offset = await user.patch(url, offset, payload[offset : offset + chunk])
            per_patch.append([op for op, _ in proxy.requests[mark:]])
        done, received = proxy.requests[start:], proxy.downstream_bytes - received
        await user.delete(url)
    middle, mib = per_patch[:-1] or per_patch, size / MIB
    sent = sum(length for op, length in done if op in ("UploadPart", "PutObject"))
    return {
        "chunk_mib": chunk / MIB,
        "size_mib": mib,
        "patches": len(per_patch),
        "requests_per_mib": len(done) / mib,
        "requests_creation": creation,
        "requests_per_patch_mean": sum(map(len, middle)) / len(middle),
        "requests_per_patch_max": max(map(len, middle)),
        "requests_last_patch": len(per_patch[-1]),
        "upload_part_per_patch_mean": sum(ops.count("UploadPart") for ops in middle) / len(middle),
        "upload_amplification": sent / size,
        "bytes_received_per_mib": received / mib,
        "requests": dict(collections.Counter(op for op, _ in done).most_common()),
    }


async def measure(s3: SeaweedFS, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every PATCH size in turn, through a counting proxy in front of `s3`."""
    results: dict[str, Any] = {"part_size_mib": PART_SIZE / MIB, "by_chunk": {}}
    with CountingProxy(s3.ports["s3"]) as proxy:
        env = s3.service_env(f"bench-{secrets.token_hex(4)}", PART_SIZE, proxy.url)
        with service("service_s3_counted", extra_env=env) as server:
            for chunk in CHUNKS:
                entry = await one_upload(server, proxy, SIZE, chunk)
                results["by_chunk"][f"{chunk // MIB}mib"] = entry
                log(
                    f"  {chunk // MIB} MiB PATCHes: {entry['requests_per_mib']:.2f} requests/MiB, "
                    f"{entry['requests_per_patch_mean']:.2f} per PATCH (max "
                    f"{entry['requests_per_patch_max']}), {entry['upload_amplification']:.2f}x "
                    "bytes"
                )
    return results
