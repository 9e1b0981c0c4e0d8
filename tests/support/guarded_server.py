"""The service in a thread with `video-upload serve`'s options and short limits, to be attacked."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from tests.conftest import make_settings
from video_upload.config import Settings
from video_upload.http.app import create_app
from video_upload.http.auth import Authenticator
from video_upload.http.server import ServerLimits, server_options
from video_upload.persistence.engine import migrate

LIMITS = ServerLimits(head_timeout=2.0, keep_alive_timeout=1, write_timeout=1.0)
NETWORK_TIMEOUT = 1.0
MIN_BODY_RATE = 2000  # bytes a second, over each NETWORK_TIMEOUT of waiting for body bytes


@dataclass
class GuardedServer:
    """The service in a thread, served with `server_options(settings, limits)`."""

    settings: Settings
    host: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def token(self, user_id: str) -> str:
        return Authenticator(self.settings).mint(user_id, ttl_seconds=600)

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def serve_guarded(settings: Settings, limits: ServerLimits) -> GuardedServer:
    """Serve `create_app(settings)` with the options `video-upload serve` uses, and `limits`."""
    migrate(settings.resolved_database_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(
        create_app(settings), log_level="warning", lifespan="on", **server_options(settings, limits)
    )
    server = uvicorn.Server(config)

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="guarded-server", daemon=True)
    thread.start()
    guarded = GuardedServer(settings, "127.0.0.1", sock.getsockname()[1], server, thread)
    httpx.get(f"{guarded.base_url}/healthz", timeout=60).raise_for_status()
    return guarded


# A test module imports it by name (`from ... import guarded as guarded`) for pytest to find it;
# the modules that do share one server.
@pytest.fixture(scope="session")
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GuardedServer]:
    base = tmp_path_factory.mktemp("hostile")
    settings = make_settings(
        request,
        base,
        "sqlite-local",
        network_timeout_seconds=NETWORK_TIMEOUT,
        min_body_rate_bytes_per_second=MIN_BODY_RATE,
    )
    server = serve_guarded(settings, LIMITS)
    yield server
    server.stop()
