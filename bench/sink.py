"""The raw ASGI sink, the ceiling a Python server reaches on this machine: just enough of the
service's URLs for the benchmark's client, each PATCH body appended to a file with `os.write`
(docs/performance.md). Run under uvicorn as `video-upload serve` is.

    python -m bench.sink --port 8123 --dir /tmp/sink [--fsync | --durable]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from pathlib import Path
from typing import Any

from starlette.types import Receive, Scope, Send

from video_upload.storage.writeback import start_writeback_soon

Headers = list[tuple[bytes, bytes]]


class Sink:
    def __init__(self, directory: Path, *, fsync: bool = False, durable: bool = False) -> None:
        self.directory, self.fsync, self.durable = directory, fsync, durable
        self.directory.mkdir(parents=True, exist_ok=True)
        self.offsets: dict[str, int] = {}
        self.lengths: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        upload_id = path.rstrip("/").rsplit("/", 1)[-1]
        if method == "PATCH":
            offset = await self._append(upload_id, receive)
            await _respond(send, 204, [(b"upload-offset", str(offset).encode())])
        elif method == "HEAD":
            offset = self.offsets.get(upload_id, 0)
            await _respond(send, 200, [(b"upload-offset", str(offset).encode())])
        elif method == "POST" and path.endswith("/sessions"):
            body = json.dumps({"id": secrets.token_hex(8)}).encode()
            await _respond(send, 201, [(b"content-type", b"application/json")], body)
        elif method == "POST":
            new_id = secrets.token_hex(16)
            self.offsets[new_id] = 0
            length = dict(scope["headers"]).get(b"upload-length", b"")
            if length.isdigit():
                self.lengths[new_id] = int(length)
            (self.directory / new_id).touch()
            await _respond(send, 201, [(b"location", f"{path}/{new_id}".encode())])
        elif method == "DELETE":
            self.offsets.pop(upload_id, None)
            (self.directory / upload_id).unlink(missing_ok=True)
            await _respond(send, 204, [])
        else:  # GET /healthz and anything else
            await _respond(send, 200, [(b"content-type", b"text/plain")], b"ok")

    async def _append(self, upload_id: str, receive: Receive) -> int:
        fd = os.open(self.directory / upload_id, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        received = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                body: bytes = message.get("body", b"")
                if body:
                    view = memoryview(body)
                    while view:
                        view = view[os.write(fd, view) :]
                    received += len(body)
                if not message.get("more_body", False):
                    break
            start = self.offsets.get(upload_id, 0)
            if self.fsync:
                await asyncio.to_thread(os.fsync, fd)
            elif self.durable and received:
                start_writeback_soon(fd, start, received)
                if start + received == self.lengths.get(upload_id):
                    await asyncio.to_thread(os.fsync, fd)
        finally:
            os.close(fd)
        self.offsets[upload_id] = self.offsets.get(upload_id, 0) + received
        return self.offsets[upload_id]


async def _respond(send: Send, status: int, headers: Headers, body: bytes = b"") -> None:
    length = str(len(body)).encode()
    all_headers: list[Any] = [(b"tus-resumable", b"1.0.0"), (b"content-length", length), *headers]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--fsync", action="store_true", help="fsync after every PATCH")
    parser.add_argument("--durable", action="store_true", help="writeback per PATCH, fsync at end")
    args = parser.parse_args()
    uvicorn.run(
        Sink(args.dir, fsync=args.fsync, durable=args.durable),
        host="127.0.0.1",
        port=args.port,
        lifespan="off",
        timeout_graceful_shutdown=10,
        log_level="info",
    )


if __name__ == "__main__":
    main()
