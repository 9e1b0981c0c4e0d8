"""The benchmark's tus client: httpx (async), bodies sent from memoryview slices, pooled
connections. The same calls work against the service and the raw sink.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import httpx

from video_upload.auth import Authenticator
from video_upload.config import Settings

TUS_PATH = "/api/v1/videos/tus"
OCTETS = "application/offset+octet-stream"


def mint_token(jwt_secret: str, user_id: str) -> str:
    settings = Settings(_env_file=None, jwt_secret=jwt_secret)  # type: ignore[call-arg]
    return Authenticator(settings).mint(user_id, ttl_seconds=6 * 3600)


def new_client(base_url: str, connections: int = 16, timeout: float = 300.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout, trust_env=False)


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


# httpx annotates bodies as bytes, but its transport writes any buffer: yielding memoryview
# slices of the payload saves a copy of every body on the client side.


async def _single(view: memoryview) -> AsyncIterator[bytes]:
    yield cast(bytes, view)


async def _trickle(view: memoryview, piece: int, interval: float) -> AsyncIterator[bytes]:
    for start in range(0, len(view), piece):
        if start:
            await asyncio.sleep(interval)
        yield cast(bytes, view[start : start + piece])


@dataclass
class UploadTimings:
    """Seconds, as the client saw them: the creation, then each PATCH in order (the last one
    completes the upload)."""

    create: float = 0.0
    patches: list[float] = field(default_factory=list)


@dataclass
class TusUser:
    """One authenticated user with a practice session, talking to one server."""

    client: httpx.AsyncClient
    token: str
    session_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Tus-Resumable": "1.0.0"}

    async def open_session(self) -> str:
        response = await self.client.post(
            "/api/v1/sessions", json={"name": "bench"}, headers=self.headers
        )
        _expect(response, 201)
        self.session_id = str(response.json()["id"])
        return self.session_id

    async def create(self, length: int) -> str:
        """tus creation; returns the upload URL (path)."""
        metadata = tus_metadata(session_id=self.session_id, filename=f"{secrets.token_hex(4)}.mp4")
        headers = {**self.headers, "Upload-Length": str(length), "Upload-Metadata": metadata}
        response = await self.client.post(TUS_PATH, headers=headers)
        _expect(response, 201)
        return response.headers["Location"]

    async def head(self, url: str) -> int:
        response = await self.client.head(url, headers=self.headers)
        _expect(response, 200)
        return int(response.headers["Upload-Offset"])

    async def patch(self, url: str, offset: int, body: memoryview) -> int:
        headers = {
            **self.headers,
            "Upload-Offset": str(offset),
            "Content-Type": OCTETS,
            "Content-Length": str(len(body)),
        }
        response = await self.client.patch(url, headers=headers, content=_single(body))
        _expect(response, 204)
        return int(response.headers["Upload-Offset"])

    async def patch_slowly(
        self, url: str, offset: int, body: memoryview, piece: int, interval: float
    ) -> int:
        """One PATCH whose body trickles in `piece`-byte writes every `interval` seconds."""
        headers = {
            **self.headers,
            "Upload-Offset": str(offset),
            "Content-Type": OCTETS,
            "Content-Length": str(len(body)),
        }
        content = _trickle(body, piece, interval)
        response = await self.client.patch(url, headers=headers, content=content)
        _expect(response, 204)
        return int(response.headers["Upload-Offset"])

    async def upload(
        self, payload: memoryview, chunk_size: int, timings: UploadTimings | None = None
    ) -> str:
        """Create an upload of `len(payload)` bytes and PATCH it in `chunk_size` pieces; with
        `timings`, record how long the creation and each PATCH took, as the client saw them."""
        clock = time.perf_counter
        started = clock()
        url = await self.create(len(payload))
        if timings is not None:
            timings.create = clock() - started
        offset = 0
        while offset < len(payload):
            sent = clock()
            offset = await self.patch(url, offset, payload[offset : offset + chunk_size])
            if timings is not None:
                timings.patches.append(clock() - sent)
        return url

    async def delete(self, url: str) -> None:
        response = await self.client.delete(url, headers=self.headers)
        _expect(response, 204)


class UnexpectedResponse(RuntimeError):
    pass


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise UnexpectedResponse(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code}: {response.text[:300]}"
        )
