"""A real uvicorn server in a background thread, on a loopback port, for behaviour tests."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig

from video_upload.config import Settings
from video_upload.http.app import create_app, services_of_app
from video_upload.http.auth import Authenticator
from video_upload.http.services import Services
from video_upload.persistence.engine import migrate
from video_upload.storage.base import UploadStore
from video_upload.storage.factory import open_store

T = TypeVar("T")


class FakeClock:
    """Real time plus an offset that tests move forward to make uploads expire."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class LiveServer:
    name: str
    settings: Settings
    app: FastAPI
    clock: FakeClock
    base_url: str
    loop: asyncio.AbstractEventLoop
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def services(self) -> Services:
        return services_of_app(self.app)

    @property
    def store(self) -> UploadStore:
        return self.services.store

    def token(self, user_id: str, ttl_seconds: int = 3600) -> str:
        return Authenticator(self.settings).mint(user_id, ttl_seconds)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the server's event loop (where its engine and clients live)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def start_server(
    name: str,
    settings: Settings,
    *,
    store_opener: Any = open_store,
    routers: Sequence[APIRouter] = (),
    telemetry: TelemetryConfig | None = None,
    configure: Callable[[FastAPI], None] | None = None,
) -> LiveServer:
    """Bring the database's schema up to date, as `video-upload serve` does, then serve
    `create_app(settings)`, plus `routers` included and `configure` run on the app before it
    starts."""
    migrate(settings.resolved_database_url)
    clock = FakeClock()
    app = create_app(settings, store_opener=store_opener, clock=clock, telemetry=telemetry)
    for router in routers:
        app.include_router(router)
    if configure is not None:
        configure(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn has started
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    loop_ready = threading.Event()
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        loop_ready.set()
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        finally:
            loop.close()

    thread = threading.Thread(target=serve, name=f"server-{name}", daemon=True)
    thread.start()
    loop_ready.wait(10)
    base_url = f"http://127.0.0.1:{port}"
    httpx.get(f"{base_url}/healthz", timeout=30).raise_for_status()
    return LiveServer(
        name=name,
        settings=settings,
        app=app,
        clock=clock,
        base_url=base_url,
        loop=holder["loop"],
        _server=server,
        _thread=thread,
    )


@contextmanager
def expired_clock(server: LiveServer) -> Iterator[None]:
    """Move the service clock an hour past the expiration period; always move it back."""
    hours = server.settings.upload_expiration_hours + 1
    server.clock.advance(hours=hours)
    try:
        yield
    finally:
        server.clock.advance(hours=-hours)
