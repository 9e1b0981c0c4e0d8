"""The REST API's requests as the tests make them: init, PATCH, status, complete, listing, and
the checks every REST error and timestamp must pass."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.conftest import User
from tests.support.tus import patch_headers

API = "/api/v1"
INIT = f"{API}/videos/upload/init"
COMPLETE = f"{API}/videos/upload/complete"
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)")
SIZE = 1000


@dataclass(frozen=True)
class Initialised:
    upload_id: str
    upload_url: str
    size: int
    body: dict[str, Any]


def init_body(session_id: str, /, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": session_id,
        "filename": "practice_video.mp4",
        "file_size": SIZE,
        "duration_seconds": 180,
        "content_type": "video/mp4",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def init(client: httpx.Client, user: User, session_id: str, **overrides: Any) -> Initialised:
    response = client.post(INIT, json=init_body(session_id, **overrides), headers=user.bearer)
    assert response.status_code == 201, response.text
    body = response.json()
    return Initialised(body["upload_id"], body["upload_url"], body_size(overrides), body)


def body_size(overrides: dict[str, Any]) -> int:
    size = overrides.get("file_size", SIZE)
    assert isinstance(size, int)
    return size


def send(
    client: httpx.Client, user: User, upload: Initialised, data: bytes, offset: int = 0
) -> None:
    response = client.patch(
        upload.upload_url, headers=patch_headers(user.headers, offset), content=data
    )
    assert response.status_code == 204, response.text
    assert response.headers["Upload-Offset"] == str(offset + len(data))


def status_of(client: httpx.Client, user: User, upload_id: str) -> httpx.Response:
    return client.get(f"{API}/videos/upload/{upload_id}/status", headers=user.bearer)


def complete(client: httpx.Client, user: User, upload_id: str) -> httpx.Response:
    return client.post(COMPLETE, json={"upload_id": upload_id}, headers=user.bearer)


def listed(client: httpx.Client, user: User, session_id: str) -> dict[str, dict[str, Any]]:
    """The session's videos, by upload id."""
    response = client.get(f"{API}/sessions/{session_id}/videos", headers=user.bearer)
    assert response.status_code == 200, response.text
    return {video["upload_id"]: video for video in response.json()}


def assert_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A REST error: one of `statuses`, a JSON body that is `{"error": {code, message}}` only."""
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


def utc(value: str) -> datetime:
    assert ISO_UTC.fullmatch(value), value
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0)
    return moment
