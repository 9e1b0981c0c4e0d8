"""Small helpers for speaking tus in tests."""

from __future__ import annotations

import base64
import hashlib

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def auth(token: str, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", **TUS}
    headers.update({key.replace("_", "-"): value for key, value in extra.items()})
    return headers


def metadata(**values: str) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking bytes, so misplaced chunks are caught."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


TUS_PATH = "/api/v1/videos/tus"


def create_upload(client: object, headers: dict[str, str], session_id: str, length: int) -> str:
    """Create an upload and return its URL (client is an httpx.Client)."""
    import httpx

    assert isinstance(client, httpx.Client)
    response = client.post(
        TUS_PATH,
        headers={
            **headers,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(session_id=session_id, filename="take.mp4"),
        },
    )
    assert response.status_code == 201, response.text
    return str(response.headers["Location"])


def patch_headers(headers: dict[str, str], offset: int, **extra: str) -> dict[str, str]:
    return {**headers, "Upload-Offset": str(offset), "Content-Type": OCTETS, **extra}


def eventually_equal(read: object, expected: object, timeout: float = 20.0) -> object:
    """Re-read a value until it equals `expected` or `timeout` passes; returns the last value.

    For state another connection changes asynchronously (a dropped request being saved);
    the caller asserts on the result, so a wrong value still fails the test.
    """
    import time
    from collections.abc import Callable
    from typing import cast

    reader = cast(Callable[[], object], read)
    deadline = time.monotonic() + timeout
    value = reader()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        value = reader()
    return value


def complete_and_read(client: object, bearer: dict[str, str], url: str) -> bytes:
    """Complete an upload through REST and read its content back (client is an httpx.Client)."""
    import httpx

    assert isinstance(client, httpx.Client)
    upload_id = url.rsplit("/", 1)[1]
    done = client.post(
        "/api/v1/videos/upload/complete", json={"upload_id": upload_id}, headers=bearer
    )
    assert done.status_code == 200, done.text
    content = client.get(f"/api/v1/videos/{done.json()['id']}/content", headers=bearer)
    assert content.status_code == 200
    return content.content
