"""The HTTP server: uvicorn with httptools, behind a guard on request heads and stalled writes.

uvicorn closes a kept-alive connection that stays idle after an answer (`timeout_keep_alive`),
but neither of its HTTP/1.1 protocols bounds a request head: httptools takes headers of any
size (a 256 MiB header grew the process by 500 MiB, and joining its pieces held the event loop
for seconds) and any count, never notices a client that sends one header line every few
seconds, and keeps a connection that was opened and never used. Nor does it drop a connection
whose client stopped reading an answer: the request waits to write, for good.

`GuardedHttp` is the HTTP protocol class given to uvicorn (`uvicorn.Config(http=...)`, its way to
choose one). It hands every byte to uvicorn's own httptools protocol, after following the request
framing with a second httptools parser that reports only where each message begins, where its
head ends and where it ends (no header, URL or body callbacks, so that parser copies nothing).
With that, and the transport's flow control, it:

- closes a connection whose request head is not complete `head_timeout` seconds after the head's
  first byte arrived, or, for a connection's first request, after the connection was opened;
- answers 431 and closes once a head grows past `max_head_bytes`, before uvicorn keeps it (the
  bytes counted are those of reads that neither start in a body nor complete a head, so a head
  can reach `max_head_bytes` plus one read before it is refused, never more);
- aborts a connection whose writes stay paused (the client reads too little of what it was sent
  to drain uvicorn's write buffer) for `write_timeout` seconds;
- closes gracefully when uvicorn closes a connection while a request body is still arriving (an
  answer given before the body, `http.limits`): it ends its side of the connection after the
  answer, so the client knows, and reads and drops the rest of the body until it ends or
  `LINGER_SECONDS` pass, before closing. Closing with unread bytes would reset the connection,
  and the client could lose the answer (uvicorn's protocol gets a `GuardedTransport` to close).

The number of header lines, bounded here by the head's size, is counted in the app, as is a
request body that stalls (`http.limits`). docs/proxy.md says what a front proxy adds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict, cast

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from video_upload.config import Settings

log = logging.getLogger(__name__)

# How long a connection closed while its request body was still arriving reads and drops it.
LINGER_SECONDS = 5.0

REFUSED_HEAD = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 36\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"the request's headers are too large\n"
)


@dataclass(frozen=True)
class ServerLimits:
    """What a connection may take of the server outside the app's reach."""

    # The whole head (request line and headers) must arrive within this many seconds of its
    # first byte (of the connection's opening, for its first request).
    head_timeout: float = 20.0
    # The largest request head, in bytes (nginx's default allows 32 KiB, Node's 16 KiB).
    max_head_bytes: int = 64 * 1024
    # How long a kept-alive connection may wait for its next request after an answer.
    keep_alive_timeout: int = 5
    # How long an answer may wait for its client to read (a client reading less than uvicorn's
    # write buffer, 48 KiB, in this time is cut off).
    write_timeout: float = 60.0


DEFAULT_LIMITS = ServerLimits()


class GuardedHttp(asyncio.Protocol):
    """uvicorn's httptools protocol, with bounds on request heads and on stalled writes."""

    limits: ClassVar[ServerLimits] = DEFAULT_LIMITS

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,  # uvicorn's: the running loop
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._http = HttpToolsProtocol(
            config=config, server_state=server_state, app_state=app_state
        )
        framing = httptools.HttpRequestParser(self)
        framing.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn's own parser
        self._framing: httptools.HttpRequestParser | None = framing
        self._transport: asyncio.Transport | None = None
        self._head_deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        self._linger_deadline: asyncio.TimerHandle | None = None
        self._closing = False  # uvicorn's protocol closed its transport
        self._head_started = False  # a head's first byte arrived, not yet its end
        self._in_body = False
        self._heads = 0  # heads completed on this connection
        self._head_bytes = 0

    @classmethod
    def with_limits(cls, limits: ServerLimits) -> type[GuardedHttp]:
        """This protocol with other limits. uvicorn's worker processes import the protocol by
        name, so only the default limits reach them; in one process, any."""
        if limits == cls.limits:
            return cls
        return cast("type[GuardedHttp]", type(cls.__name__, (cls,), {"limits": limits}))

    # -- asyncio.Protocol, passed on to uvicorn's protocol ----------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not asyncio.Transport subclasses)
        stream = cast(asyncio.Transport, transport)
        self._transport = stream
        self._http.connection_made(GuardedTransport(stream, self))
        self._arm_head()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            self._drop(data)
            return
        framing = self._framing
        if framing is not None:
            in_body = self._in_body
            heads = self._heads
            try:
                framing.feed_data(data)
            except httptools.HttpParserUpgrade:
                self._stop_following()  # uvicorn's protocol takes the connection over
            except httptools.HttpParserError:
                # uvicorn's parser fails on the same bytes: it answers 400 and closes
                self._stop_following()
                self._http.data_received(data)
                self._close()
                return
            else:
                if in_body or self._in_body or self._heads != heads:
                    self._head_bytes = 0  # at most one read of the current head is not counted
                else:
                    self._head_bytes += len(data)
                    if self._head_bytes > self.limits.max_head_bytes:
                        self._refuse_head()
                        return
                if self._head_started and self._head_deadline is None:
                    self._arm_head()
        self._http.data_received(data)

    def eof_received(self) -> None:
        self._http.eof_received()  # None: the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_following()
        self._disarm_write()
        if self._linger_deadline is not None:
            self._linger_deadline.cancel()
            self._linger_deadline = None
        self._http.connection_lost(exc)

    def pause_writing(self) -> None:
        self._http.pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self._loop.call_later(
                self.limits.write_timeout, self._write_timed_out
            )

    def resume_writing(self) -> None:
        self._disarm_write()
        self._http.resume_writing()

    # -- the framing parser's callbacks -----------------------------------------------------

    def on_message_begin(self) -> None:
        self._head_started = True

    def on_headers_complete(self) -> None:
        self._head_started = False
        self._in_body = True
        self._heads += 1
        self._disarm_head()

    def on_message_complete(self) -> None:
        self._in_body = False

    # -- limits -----------------------------------------------------------------------------

    def _arm_head(self) -> None:
        self._head_deadline = self._loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _disarm_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _disarm_write(self) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def _stop_following(self) -> None:
        self._framing = None
        self._disarm_head()

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        log.info("closing a connection whose request head took over %ss", self.limits.head_timeout)
        self._stop_following()
        self._close()

    def _write_timed_out(self) -> None:
        self._write_deadline = None
        log.info(
            "aborting a connection whose client read nothing for %ss", self.limits.write_timeout
        )
        if self._transport is not None:
            self._transport.abort()  # close() would wait for the unread answer to be sent

    def _refuse_head(self) -> None:
        self._stop_following()
        transport = self._transport
        assert transport is not None
        # Answer only a connection's first request: an earlier one may still be answering.
        if self._heads == 0 and not transport.is_closing():
            transport.write(REFUSED_HEAD)
        self._close()

    def _close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    # -- uvicorn's protocol closing -----------------------------------------------------------

    def close_requested(self) -> None:
        """uvicorn's protocol closed its transport: close, or linger while a body arrives."""
        transport = self._transport
        if self._closing or transport is None:
            return
        self._closing = True
        if not (self._in_body and self._framing is not None) or transport.is_closing():
            transport.close()
            return
        self._disarm_head()
        transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()  # after the answer: the client sees the connection end
        self._linger_deadline = self._loop.call_later(LINGER_SECONDS, self._close)

    def _drop(self, data: bytes) -> None:
        """Bytes arriving after uvicorn's protocol closed: the rest of a body, read and
        dropped until it ends."""
        framing = self._framing
        if framing is None:
            self._close()
            return
        try:
            framing.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._close()
            return
        if not self._in_body:
            self._close()


class GuardedTransport(asyncio.Transport):
    """The transport uvicorn's protocol is given: the connection's own, except that closing it
    goes through `GuardedHttp.close_requested`."""

    def __init__(self, transport: asyncio.Transport, guard: GuardedHttp) -> None:
        super().__init__()
        self._transport = transport
        self._guard = guard
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self._guard.close_requested()

    def is_closing(self) -> bool:
        return self._closed or self._transport.is_closing()

    def abort(self) -> None:
        self._closed = True
        self._transport.abort()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self._transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)  # an upgrade: the guard steps aside

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class ServerOptions(TypedDict):
    """The options `video-upload serve` gives uvicorn (`uvicorn.run` or `uvicorn.Config`)."""

    http: type[asyncio.Protocol]
    timeout_keep_alive: int
    timeout_graceful_shutdown: int
    proxy_headers: bool


def server_options(settings: Settings, limits: ServerLimits = DEFAULT_LIMITS) -> ServerOptions:
    """uvicorn's options for the service: the guarded protocol with `limits`."""
    return ServerOptions(
        http=GuardedHttp.with_limits(limits),
        timeout_keep_alive=limits.keep_alive_timeout,
        timeout_graceful_shutdown=10,
        proxy_headers=settings.trust_proxy_headers,
    )
