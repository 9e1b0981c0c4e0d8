"""The client's HTTP calls: REST sessions, init/complete, listings and tus HEAD/PATCH, over httpx.

Failures are translated here into a few errors the upload loop can act on, so nothing from
httpx leaks into it: `Transient` (worth retrying after a pause), `Conflict` (the server holds a
different offset: ask it with HEAD), `Gone` (the upload no longer exists: start over) and
`Rejected` (retrying cannot help).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

TUS_VERSION = "1.0.0"
OCTET_STREAM = "application/offset+octet-stream"
TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)
# Statuses that say "not now" rather than "never": storage or database hiccups, another writer
# holding the upload (423), rate limits, and a chunk damaged on the way (460 checksum mismatch).
TRANSIENT_STATUSES = {423, 429, 460}


class ClientError(Exception):
    """A failed call, with a message meant for the person running the command."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Transient(ClientError):
    """Worth retrying after a pause (network errors, 5xx, 423, 429, 460)."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after
        # True when the request may have reached the server and taken effect (the connection
        # broke after sending): retrying a non-idempotent call could then do it twice.
        self.maybe_applied = maybe_applied


class Conflict(ClientError):
    """409: the server's offset differs from ours, or the upload is not complete yet."""


class Gone(ClientError):
    """404/410: the upload (or session) does not exist, or has expired."""


class Rejected(ClientError):
    """Any other refusal: bad token, someone else's session, not a video, too large…"""


@dataclass(frozen=True)
class InitResult:
    upload_id: str
    upload_url: str
    video_id: str
    chunk_size: int


@dataclass(frozen=True)
class TusState:
    offset: int
    length: int | None


class Api:
    """One server, one token. Use as a context manager (it owns an httpx connection pool)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- REST ----------------------------------------------------------------------------

    def init_upload(
        self,
        session_id: str,
        filename: str,
        file_size: int,
        duration_seconds: float,
        content_type: str | None,
    ) -> InitResult:
        body: dict[str, Any] = {
            "session_id": session_id,
            "filename": filename,
            "file_size": file_size,
            "duration_seconds": duration_seconds,
        }
        if content_type:
            body["content_type"] = content_type
        data = self._json(self._send("POST", "/api/v1/videos/upload/init", json=body))
        return InitResult(
            upload_id=str(data["upload_id"]),
            upload_url=str(data["upload_url"]),
            video_id=str(data["video_id"]),
            chunk_size=int(data["chunk_size"]),
        )

    def complete(self, upload_id: str) -> dict[str, Any]:
        response = self._send(
            "POST", "/api/v1/videos/upload/complete", json={"upload_id": upload_id}
        )
        return self._json(response)

    def create_session(self, name: str) -> dict[str, Any]:
        """A new practice session of the token's user: `{id, user_id, name, created_at}`."""
        return self._json(self._send("POST", "/api/v1/sessions", json={"name": name}))

    def sessions(self) -> list[dict[str, Any]]:
        """The token's user's practice sessions (every page)."""
        return self._pages("/api/v1/sessions", "session")

    def session_videos(self, session_id: str) -> list[dict[str, Any]]:
        """The session's videos (every page)."""
        return self._pages(f"/api/v1/sessions/{session_id}/videos", "video")

    def _pages(self, url: str, what: str, most: int = 1000) -> list[dict[str, Any]]:
        """A list the server answers a page at a time, following its `Link: rel="next"`
        (at most `most` pages, against a server that never stops)."""
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        for _ in range(most):
            if next_url is None:
                break
            response = self._send("GET", next_url)
            items += self._list(response, what)
            following = response.links.get("next", {}).get("url")
            next_url = str(response.url.join(following)) if following else None
        return items

    # -- tus -----------------------------------------------------------------------------

    def head(self, upload_url: str) -> TusState:
        response = self._send("HEAD", upload_url, headers={"Tus-Resumable": TUS_VERSION})
        offset = _int_header(response, "Upload-Offset")
        if offset is None:
            raise Transient("the server's HEAD answer has no Upload-Offset", response.status_code)
        return TusState(offset, _int_header(response, "Upload-Length"))

    def patch(
        self, upload_url: str, offset: int, body: Iterable[bytes], length: int, checksum: str
    ) -> int:
        """Send `length` bytes at `offset`; returns the server's new offset."""
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Offset": str(offset),
            "Content-Type": OCTET_STREAM,
            "Content-Length": str(length),
            "Upload-Checksum": checksum,
        }
        response = self._send("PATCH", upload_url, headers=headers, content=body)
        new_offset = _int_header(response, "Upload-Offset")
        if new_offset is None:
            raise Transient("the server's PATCH answer has no Upload-Offset", response.status_code)
        return new_offset

    # -- plumbing ------------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise Transient(f"cannot reach the server: {_describe(error)}") from error
        except httpx.TransportError as error:
            raise Transient(
                f"the connection failed: {_describe(error)}", maybe_applied=True
            ) from error
        check(response)
        return response

    @staticmethod
    def _list(response: httpx.Response, what: str) -> list[dict[str, Any]]:
        try:
            data = response.json()
        except ValueError as error:
            raise Rejected("the server's answer is not JSON", response.status_code) from error
        if not isinstance(data, list):
            raise Rejected(f"the server answered the {what} list with something else")
        return [item for item in data if isinstance(item, dict)]

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as error:
            raise Rejected("the server's answer is not JSON", response.status_code) from error
        if not isinstance(data, dict):
            raise Rejected("the server's answer is not a JSON object", response.status_code)
        return data


def check(response: httpx.Response) -> None:
    """Raise the error that a non-2xx answer stands for."""
    status = response.status_code
    if status < 400:
        return
    message = f"{status}: {error_message(response)}"
    if status >= 500 or status in TRANSIENT_STATUSES:
        raise Transient(message, status, retry_after=_retry_after(response))
    if status == 409:
        raise Conflict(message, status)
    if status in {404, 410}:
        raise Gone(message, status)
    raise Rejected(message, status)


def error_message(response: httpx.Response) -> str:
    """The REST error's message (`{"error": {"message"}}`), or the tus plain-text body."""
    if response.request.method == "HEAD":
        return response.reason_phrase or "error"
    try:
        data = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase or "error"
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("message", "error"))
    return response.text.strip()[:200]


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff schedule decides instead


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__
