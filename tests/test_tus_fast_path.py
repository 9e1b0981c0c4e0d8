"""tus HEAD and PATCH past FastAPI's router (`http.tus.fast_path`): every middleware still
sees them (errors, CORS, the drain, telemetry, and any middleware added to the app), and a
failure answers as it would anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.conftest import make_settings
from tests.support.live import LiveServer, start_server
from tests.support.tus import TUS_PATH, auth, metadata, patch_headers
from video_upload.config import Settings
from video_upload.storage.base import (
    ByteStream,
    StagingArea,
    StoredUpload,
    UploadStore,
    WriteResult,
)
from video_upload.storage.factory import open_store

ORIGIN = {"Origin": "https://app.example"}


class RecordingTracer(trace.NoOpTracer):
    """A tracer that keeps the name of every span started (an OpenTelemetry SDK would export
    them); the spans themselves are the API's non-recording ones."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        self.names.append(name)
        return super().start_span(name, context, kind, attributes, links, start_time)


class RecordingTracerProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.tracer = RecordingTracer()

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return self.tracer


class StoreThatBreaks:
    """The real local store, except that writing raises an error no layer expects (a bug, as
    far as the service can tell)."""

    def __init__(self, store: UploadStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def write(self, upload: StoredUpload, stream: ByteStream) -> WriteResult:
        raise RuntimeError("the store failed in a way nobody planned for")


def embedded_settings(request: pytest.FixtureRequest, base: Path) -> Settings:
    return make_settings(request, base, "sqlite-local", cors_allow_origins=ORIGIN["Origin"])


@pytest.fixture
def fresh_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A server of its own (these tests drain it or break its store)."""
    live = start_server("fast-path", embedded_settings(request, tmp_path))
    yield live
    live.stop()


def new_upload(live: LiveServer, headers: dict[str, str], length: int) -> str:
    session = httpx.post(f"{live.base_url}/api/v1/sessions", headers=headers, json={})
    assert session.status_code == 201, session.text
    created = httpx.post(
        live.base_url + TUS_PATH,
        headers={
            **headers,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(session_id=session.json()["id"]),
        },
    )
    assert created.status_code == 201, created.text
    return str(created.headers["Location"])  # absolute


def test_patch_and_head_are_served_on_default_settings(fresh_server: LiveServer) -> None:
    headers = auth(fresh_server.token("alice"))
    url = new_upload(fresh_server, headers, 4)
    written = httpx.patch(url, headers=patch_headers(headers, 0), content=b"abcd")
    assert written.status_code == 204, written.text
    assert written.headers["Upload-Offset"] == "4"
    assert written.headers["Tus-Resumable"] == "1.0.0"
    head = httpx.head(url, headers=headers)
    assert head.headers["Upload-Offset"] == "4"
    assert head.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("browser", [False, True], ids=["no-origin", "origin"])
def test_patch_and_head_on_a_draining_server_answer_503_and_write_nothing(
    fresh_server: LiveServer, browser: bool
) -> None:
    headers = {**auth(fresh_server.token("alice")), **(ORIGIN if browser else {})}
    url = new_upload(fresh_server, headers, 4)
    drain = fresh_server.app.state.drain

    async def start_draining() -> None:  # as on SIGTERM, on the server's loop
        drain.start()

    fresh_server.run(start_draining())
    refused = httpx.patch(url, headers=patch_headers(headers, 0), content=b"abcd")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert httpx.head(url, headers=headers).status_code == 503
    offset = fresh_server.run(fresh_server.services.uploads.get("alice", url.rsplit("/", 1)[1]))
    assert offset.upload_offset == 0


@pytest.mark.parametrize("browser", [False, True], ids=["no-origin", "origin"])
def test_an_unexpected_failure_in_a_patch_answers_500_and_leaves_the_upload_resumable(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    browser: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def breaking_store(settings: Settings, staging: StagingArea) -> UploadStore:
        store: Any = StoreThatBreaks(await open_store(settings, staging))
        return store  # type: ignore[no-any-return]

    live = start_server(
        "breaking", embedded_settings(request, tmp_path), store_opener=breaking_store
    )
    try:
        headers = {**auth(live.token("alice")), **(ORIGIN if browser else {})}
        url = new_upload(live, headers, 4)
        failed = httpx.patch(url, headers=patch_headers(headers, 0), content=b"abcd")
        assert failed.status_code == 500
        error = failed.json()["error"]
        assert error["code"] == "internal_error"
        error_id = error["details"]["error_id"]
        assert error_id in error["message"]
        assert "the store failed in a way nobody planned for" in caplog.text
        assert error_id in caplog.text  # the answer names the log line
        # the writer's lease was given back: the client's HEAD is answered at once
        head = httpx.head(url, headers=headers)
        assert head.status_code == 200
        assert head.headers["Upload-Offset"] == "0"
    finally:
        live.stop()


def test_with_opentelemetry_configured_patches_and_heads_are_traced(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    provider = RecordingTracerProvider()
    live = start_server(
        "traced", embedded_settings(request, tmp_path), telemetry={"tracer_provider": provider}
    )
    try:
        headers = auth(live.token("alice"))
        url = new_upload(live, headers, 4)
        provider.tracer.names.clear()
        written = httpx.patch(url, headers=patch_headers(headers, 0), content=b"abcd")
        assert written.status_code == 204
        assert httpx.head(url, headers=headers).headers["Upload-Offset"] == "4"
        methods = [name.split()[0] for name in provider.tracer.names]
        assert "PATCH" in methods
        assert "HEAD" in methods
    finally:
        live.stop()


def test_a_middleware_added_to_the_app_sees_every_tus_patch_and_head(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    seen: list[str] = []

    class Recorder:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append(scope["method"])
            await self.app(scope, receive, send)

    def with_recorder(app: FastAPI) -> None:
        app.add_middleware(Recorder)

    live = start_server("recorded", embedded_settings(request, tmp_path), configure=with_recorder)
    try:
        headers = auth(live.token("alice"))  # no Origin: a phone's request
        url = new_upload(live, headers, 4)
        seen.clear()
        assert (
            httpx.patch(url, headers=patch_headers(headers, 0), content=b"abcd").status_code == 204
        )
        assert httpx.head(url, headers=headers).status_code == 200
        assert seen == ["PATCH", "HEAD"]
    finally:
        live.stop()
