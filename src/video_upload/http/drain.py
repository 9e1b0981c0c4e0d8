"""Graceful shutdown: on SIGTERM/SIGINT, stop in-flight writes so they save, refuse new work.

uvicorn owns the signal handlers and, on a signal, stops accepting connections and waits (up to
its graceful timeout) for running requests. A PATCH from a phone on a dead network would make it
wait the whole timeout and then be cancelled, losing what it had received. So the app chains its
own handler in front of uvicorn's: the drain starts at once, every upload writer is told to stop
and commit what it has, and requests that still arrive on open connections get 503 with
`Retry-After` (a tus client retries them on another node).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Drain:
    """Whether this process is shutting down, and what to do when it starts to."""

    def __init__(self) -> None:
        self.draining = False
        self._callbacks: list[Callable[[], None]] = []

    def on_drain(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def start(self) -> None:
        if self.draining:
            return
        self.draining = True
        log.info("shutting down: stopping in-flight uploads so they save what they received")
        for callback in self._callbacks:
            callback()

    def chain_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Run `start` on the loop when a stop signal arrives, then the previous handler.

        Returns a function that restores the previous handlers. Does nothing off the main
        thread (where signals cannot be handled, e.g. a server embedded in tests).
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}

        def handle(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.start)
            handler = previous.get(signum)
            if callable(handler):
                handler(signum, frame)

        for sig in HANDLED_SIGNALS:
            previous[sig] = signal.signal(sig, handle)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


class DrainMiddleware:
    """503 for requests that arrive once the process has started to shut down."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.drain.draining:
            await self.app(scope, receive, send)
            return
        body = b"service is shutting down; retry\n"
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                    (b"tus-resumable", b"1.0.0"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
