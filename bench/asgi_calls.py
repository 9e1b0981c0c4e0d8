"""Driving the service's ASGI app, or the sink, directly: no client, no socket, no uvicorn.

`bench.inprocess` times these calls and `bench.instructions` counts their instructions: a new
upload through the app's own tus creation, then PATCHes whose bodies arrive as prepared ASGI
messages.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Message

from bench.client import tus_metadata

TUS_PATH = "/api/v1/videos/tus"


def service_settings(base: Path, secret: str, max_mb: int, database_url: str | None = None) -> Any:
    """The service's settings for a run in `base`: SQLite unless `database_url` says otherwise,
    the local store, no video probe."""
    from video_upload.config import Settings

    return Settings(
        data_dir=base,
        local_storage_path=base / "uploads",
        jwt_secret=secret,
        database_url=database_url or f"sqlite+aiosqlite:///{base / 'video-upload.db'}",
        video_probe=False,
        max_video_size_mb=max_mb,
    )


async def create_upload(app: ASGIApp, headers: dict[str, str], length: int, session: str) -> str:
    """A new upload of `length` bytes: its path."""
    metadata = tus_metadata(session_id=session, filename="take.mp4")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        response = await client.post(
            TUS_PATH,
            headers={**headers, "Upload-Length": str(length), "Upload-Metadata": metadata},
        )
        if response.status_code != 201:
            raise RuntimeError(f"creation answered {response.status_code}: {response.text}")
        return httpx.URL(response.headers["Location"]).path


async def open_session(app: ASGIApp, headers: dict[str, str]) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        response = await client.post("/api/v1/sessions", json={"name": "bench"}, headers=headers)
        response.raise_for_status()
        return str(response.json()["id"])


def body_messages(chunk: bytes, message_size: int) -> list[bytes]:
    """A PATCH's body cut into ASGI messages of `message_size` bytes."""
    return [chunk[start : start + message_size] for start in range(0, len(chunk), message_size)]


async def send_patches(
    app: ASGIApp,
    path: str,
    headers: dict[str, str],
    messages: list[bytes],
    patches: int,
    suspend: bool = False,
) -> None:
    """`patches` PATCHes, each with the body `messages`, to the new upload at `path`."""
    size = sum(len(message) for message in messages)
    base = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
    base += [
        (b"content-type", b"application/offset+octet-stream"),
        (b"content-length", str(size).encode()),
    ]
    for index in range(patches):
        offset = [(b"upload-offset", str(index * size).encode())]
        await send_patch(app, path, base + offset, messages, suspend)
        await asyncio.sleep(0)  # what follows a response (writeback) runs inside the round


async def send_patch(
    app: ASGIApp,
    path: str,
    headers: list[tuple[bytes, bytes]],
    messages: list[bytes],
    suspend: bool = False,
) -> None:
    """One PATCH through `app`, its body delivered as `messages`; fails unless answered 204.
    With `suspend`, each message arrives on a later turn of the event loop, as from a socket:
    the request's task suspends and resumes once per message."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    remaining = iter(enumerate(messages, start=1))
    statuses: list[int] = []
    loop = asyncio.get_running_loop()

    async def receive() -> Message:
        if suspend:
            arrived = loop.create_future()
            loop.call_soon(arrived.set_result, None)
            await arrived
        index, body = next(remaining)
        return {"type": "http.request", "body": body, "more_body": index < len(messages)}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [204]:
        raise RuntimeError(f"PATCH {path} answered {statuses}")
