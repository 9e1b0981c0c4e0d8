"""The benchmark's tus client: httpx (async) with pooled connections, bodies sent as memoryview
slices of one payload. The same calls work against the service and the raw sink.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import httpx
import jwt

TUS_PATH = "/api/v1/videos/tus"


def mint_token(jwt_secret: str, user_id: str) -> str:
    """An HS256 JWT for `user_id`, as the service accepts with `JWT_SECRET=jwt_secret`."""
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + 6 * 3600}, jwt_secret, "HS256")


def new_client(base_url: str, connections: int = 16, timeout: float = 300.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout, trust_env=False)


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def _pieces(view: memoryview, piece: int, interval: float) -> AsyncIterator[bytes]:
    # httpx annotates bodies as bytes, but its transport writes any buffer: memoryview slices
    # save a copy of every body on the client's side.
    for start in range(0, len(view), piece):
        if start and interval:
            await asyncio.sleep(interval)
        yield cast(bytes, view[start : start + piece])


class UnexpectedResponse(RuntimeError):
    pass


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise UnexpectedResponse(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code}: {response.text[:300]}"
        )


@dataclass
class TusUser:
    """One authenticated user with a practice session, talking to one server."""

    client: httpx.AsyncClient
    token: str
    session_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Tus-Resumable": "1.0.0"}

    async def open_session(self) -> None:
        response = await self.client.post(
            "/api/v1/sessions", json={"name": "bench"}, headers=self.headers
        )
        _expect(response, 201)
        self.session_id = str(response.json()["id"])

    async def create(self, length: int) -> str:
        """tus creation; returns the upload's URL (its path)."""
        metadata = tus_metadata(session_id=self.session_id, filename=f"{secrets.token_hex(4)}.mp4")
        headers = {**self.headers, "Upload-Length": str(length), "Upload-Metadata": metadata}
        response = await self.client.post(TUS_PATH, headers=headers)
        _expect(response, 201)
        return response.headers["Location"]

    async def patch(
        self, url: str, offset: int, body: memoryview, *, piece: int = 0, interval: float = 0.0
    ) -> int:
        """One PATCH; with `piece`, its body trickles in `piece`-byte writes every `interval`
        seconds. Returns the new offset."""
        headers = {
            **self.headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(body)),
        }
        content = _pieces(body, piece or len(body) or 1, interval)
        response = await self.client.patch(url, headers=headers, content=content)
        _expect(response, 204)
        return int(response.headers["Upload-Offset"])

    async def upload(self, payload: memoryview, chunk_size: int) -> str:
        """Create an upload of `len(payload)` bytes and PATCH it in `chunk_size` pieces."""
        url = await self.create(len(payload))
        offset = 0
        while offset < len(payload):
            offset = await self.patch(url, offset, payload[offset : offset + chunk_size])
        return url

    async def delete(self, url: str) -> None:
        response = await self.client.delete(url, headers=self.headers)
        _expect(response, 204)
