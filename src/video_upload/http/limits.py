"""The limits every request meets in the app: how many header lines it has, and how long it may
stall once under way.

The server bounds a request head's size and arrival time, an idle connection's life and an
answer nobody reads (`http.server`). `RequestLimits`, the outermost of the app's limits,
bounds the rest:

- a request with more than `MAX_HEADER_COUNT` header lines is answered 431;
- a wait for request body bytes that lasts `network_timeout` seconds (NETWORK_TIMEOUT_SECONDS)
  ends in `http.disconnect`, as if the client had gone: a tus PATCH keeps what it received and
  lets go of its upload (`lifecycle.streams`), any other request ends as for a vanished client;
- so does a body that trickles: once the request has waited `network_timeout` seconds for body
  bytes in all, and again each time it has waited that long more, the bytes that came in those
  waits must average `min_body_rate` a second (MIN_BODY_RATE_BYTES_PER_SECOND), or it ends the
  same way. Only time spent waiting for the client counts, so a slow disk or S3, which stops the
  app from reading, never counts against a client;
- an answer given before its request's body has all arrived (an early error, a stalled body)
  first reads and drops what is left of the body, up to `DRAIN_BYTES` and while it keeps
  coming (`DRAIN_WAIT_SECONDS` at most between messages), and otherwise closes the connection.
  The rest of a body is thus never read as a next request, a client that stops sending it
  cannot hold the connection (tus-js-client in Node stops sending a PATCH body answered 409,
  and waits for the request to end), and a client that is still sending a small body is not
  reset before it reads its answer.

One timer per request watches the waits for body bytes, re-armed from the time the current wait
began: a wait itself costs two clock reads and no timer (a tus PATCH body arrives in dozens of
messages).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Browsers send about 20 header lines, proxies add a few; httparse (hyper) stops at 100.
MAX_HEADER_COUNT = 100
# What an early answer reads of the rest of its request's body: a default 5 MiB tus chunk.
DRAIN_BYTES = 8 * 1024 * 1024
DRAIN_WAIT_SECONDS = 1.0

DISCONNECT: Message = {"type": "http.disconnect"}
CONNECTION_CLOSE = (b"connection", b"close")
TOO_MANY_HEADERS = b"the request has too many header lines\n"


class RequestLimits:
    """Header count, stalled bodies, answers given before the body arrived."""

    def __init__(
        self,
        app: ASGIApp,
        network_timeout: float,
        min_body_rate: int = 0,
        max_header_count: int = MAX_HEADER_COUNT,
    ) -> None:
        self.app = app
        self.network_timeout = network_timeout
        self.min_body_rate = min_body_rate
        self.max_header_count = max_header_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope["headers"]) > self.max_header_count:
            await refuse_headers(send)
            return
        watch = Watch(scope, receive, send, self.network_timeout, self.min_body_rate)
        try:
            await self.app(scope, watch.receive, watch.send)
        finally:
            watch.stop()


async def refuse_headers(send: Send) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(TOO_MANY_HEADERS)).encode()),
        CONNECTION_CLOSE,
    ]
    await send({"type": "http.response.start", "status": 431, "headers": headers})
    await send({"type": "http.response.body", "body": TOO_MANY_HEADERS})


def declares_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


def expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" for name, _ in scope["headers"])


class Watch:
    """One request's `receive`, each wait for body bytes bounded by `timeout` seconds and the
    bytes of every `timeout` seconds of waits by `min_rate`, and its `send`, which sees that an
    answer leaves no body behind."""

    __slots__ = (
        "_body_complete",
        "_draining",
        "_expired",
        "_loop",
        "_min_rate",
        "_receive",
        "_receiver",
        "_scope",
        "_send",
        "_since",
        "_timeout",
        "_timer",
        "_window_bytes",
        "_window_waited",
    )

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, timeout: float, min_rate: int = 0
    ) -> None:
        self._scope = scope
        self._receive = receive
        self._send = send
        self._timeout = timeout
        self._min_rate = min_rate
        # the bytes received, and the seconds spent waiting for them (finished waits only),
        # since the rate was last checked
        self._window_bytes = 0
        self._window_waited = 0.0
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._body_complete = False
        self._since: float | None = None  # when the current wait for body bytes began
        self._receiver: asyncio.Task[object] | None = None
        self._expired = False
        self._draining = False

    async def receive(self) -> Message:
        if self._body_complete:  # only a disconnect is left to wait for: no limit
            return await self._receive()
        if self._expired:
            return DISCONNECT
        self._since = now = self._loop.time()
        if self._timer is None:
            if self._receiver is None:  # one task reads a body (`asyncio.current_task` costs)
                self._receiver = asyncio.current_task()
            self._timer = self._loop.call_at(now + self._timeout, self._check)
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            receiver = self._receiver
            if self._expired and receiver is not None and receiver.uncancel() == 0:
                return DISCONNECT
            raise
        finally:
            self._window_waited += self._loop.time() - now
            self._since = None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._body_complete = True
        else:
            self._window_bytes += len(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        if (
            message["type"] == "http.response.start"
            and not self._body_complete
            and declares_body(self._scope)
            and not await self._drain()
        ):
            message = {**message, "headers": [*message.get("headers", ()), CONNECTION_CLOSE]}
        await self._send(message)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _drain(self) -> bool:
        """Read and drop the rest of the body, within bounds; whether it all arrived."""
        if self._expired or expects_continue(self._scope):  # no body is coming unasked
            return False
        self.stop()  # the drain's own, shorter, waits
        self._timeout = min(self._timeout, DRAIN_WAIT_SECONDS)
        self._draining = True
        dropped = 0
        while not self._body_complete and not self._expired and dropped <= DRAIN_BYTES:
            message = await self.receive()
            if message["type"] != "http.request":
                return False
            dropped += len(message.get("body", b""))
        return self._body_complete and not self._expired

    def _check(self) -> None:
        """The timer: end a wait that has lasted the timeout, or a body whose last `timeout`
        seconds of waits brought too few bytes; else look again when either could next be true
        (no wait: the next one arms the timer anew)."""
        self._timer = None
        since = self._since
        if since is None or self._receiver is None:
            return
        now = self._loop.time()
        current = now - since
        if current >= self._timeout:
            self._expire(f"no body bytes for {self._timeout}s")
            return
        waited = self._window_waited + current
        if self._min_rate and waited >= self._timeout:
            if self._window_bytes < self._min_rate * waited:
                self._expire(
                    f"{self._window_bytes} body bytes in {waited:.0f}s of waiting, "
                    f"fewer than {self._min_rate} a second"
                )
                return
            # a new window from now: the current wait counts only from here on
            self._window_bytes, self._window_waited = 0, -current
            waited = 0.0
        next_check = since + self._timeout
        if self._min_rate:
            next_check = min(next_check, now + self._timeout - waited)
        self._timer = self._loop.call_at(next_check, self._check)

    def _expire(self, why: str) -> None:
        """End the current wait for body bytes; the request goes on as if the client had gone."""
        self._expired = True
        if not self._draining:
            log.info(
                "%s %s: %s; the request ends as if the client had gone",
                self._scope["method"],
                self._scope["path"],
                why,
            )
        assert self._receiver is not None
        self._receiver.cancel()
