"""The benchmark's tus client (httpx, bodies as memoryview slices of one payload), for the
service and the raw sink alike."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import httpx
import jwt

from bench.stats import MIB

TUS_PATH = "/api/v1/videos/tus"


def mint_token(jwt_secret: str, user_id: str) -> str:
    """An HS256 JWT for `user_id`, as the service accepts with `JWT_SECRET=jwt_secret`."""
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + 6 * 3600}, jwt_secret, "HS256")


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def make_payload(size: int) -> memoryview:
    """`size` bytes (a random MiB repeated), to slice bodies from without copying."""
    block = os.urandom(MIB)
    return memoryview(block * (size // MIB) + block[: size % MIB])


async def pieces(view: memoryview, piece: int = 0, interval: float = 0.0) -> AsyncIterator[bytes]:
    """`view` in `piece`-byte writes (all at once by default), every `interval` seconds."""
    # httpx annotates bodies as bytes, but its transport writes any buffer: memoryview slices
    # save a copy of every body on the client's side.
    piece = piece or len(view) or 1
    for start in range(0, len(view), piece):
        if start and interval:
            await asyncio.sleep(interval)
        yield cast(bytes, view[start : start + piece])


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """An HTTP message head's first line and its headers (names in lower case)."""
    first, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return first, headers


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code}: {response.text[:300]}"
        )
    return response


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
        answer = await self.client.post(
            "/api/v1/sessions", json={"name": "bench"}, headers=self.headers
        )
        self.session_id = str(expect(answer, 201).json()["id"])

    async def create(self, length: int) -> str:
        """tus creation; returns the upload's URL (its path)."""
        metadata = tus_metadata(session_id=self.session_id, filename=f"{secrets.token_hex(4)}.mp4")
        headers = {**self.headers, "Upload-Length": str(length), "Upload-Metadata": metadata}
        return expect(await self.client.post(TUS_PATH, headers=headers), 201).headers["Location"]

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
        content = pieces(body, piece, interval)
        response = await self.client.patch(url, headers=headers, content=content)
        return int(expect(response, 204).headers["Upload-Offset"])

    async def upload(self, payload: memoryview, chunk_size: int) -> str:
        """Create an upload of `len(payload)` bytes and PATCH it in `chunk_size` pieces."""
        url = await self.create(len(payload))
        offset = 0
        while offset < len(payload):
            offset = await self.patch(url, offset, payload[offset : offset + chunk_size])
        return url

    async def delete(self, url: str) -> None:
        expect(await self.client.delete(url, headers=self.headers), 204)
