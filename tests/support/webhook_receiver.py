"""A webhook receiver for the tests: a real HTTP server on a loopback port that keeps what it
accepts, and can be told to refuse (as a receiver that is down or failing would)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


class WebhookReceiver:
    def __init__(self) -> None:
        self.accepted: list[Received] = []
        self.refused = 0
        self.refusing = False
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._changed:
                    if receiver.refusing:
                        receiver.refused += 1
                        status = 503
                    else:
                        headers = {name.lower(): value for name, value in self.headers.items()}
                        receiver.accepted.append(Received(headers, body))
                        status = 204
                    receiver._changed.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """The accepted deliveries once there are at least `count` (or fail after `timeout`)."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self.accepted) >= count, timeout)
            assert arrived, f"{len(self.accepted)} of {count} webhooks arrived: {self.accepted}"
            return list(self.accepted)

    def wait_for_refusals(self, count: int, timeout: float = 30) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.refused >= count, timeout)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
