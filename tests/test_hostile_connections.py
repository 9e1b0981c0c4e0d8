"""Clients that would hold the server: huge or endless request heads, idle connections, bodies
that stall, answers nobody reads. Each is cut off by the server itself, on its own clock.

The server runs as `video-upload serve` configures it (`http.server.server_options`), in process
with short limits; the last tests start a real `video-upload serve` and check its default limits.
Every wait below is on something the client can observe (an answer, the connection closing),
each with a deadline.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt
import pytest
import uvicorn

from tests.conftest import make_settings
from tests.support.nodes import Node
from tests.support.tus import auth, metadata, patch_headers, pattern
from video_upload.config import Settings
from video_upload.http.app import create_app
from video_upload.http.auth import Authenticator
from video_upload.http.limits import MAX_HEADER_COUNT
from video_upload.http.server import DEFAULT_LIMITS, ServerLimits, server_options
from video_upload.persistence.engine import migrate

LIMITS = ServerLimits(head_timeout=2.0, keep_alive_timeout=1, write_timeout=1.0)
NETWORK_TIMEOUT = 1.0
MIN_BODY_RATE = 2000  # bytes a second, over each NETWORK_TIMEOUT of waiting for body bytes
SECRET = "hostile-connections-secret-0123456789"
MIB = 1024 * 1024
# How much later than its limit a cut-off may come on a loaded machine.
SLACK = 5.0


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


@pytest.fixture(scope="module")
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


# -- raw HTTP/1.1 ---------------------------------------------------------------------------


def request_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_until_closed(sock: socket.socket, deadline: float) -> tuple[bytes, float | None]:
    """Everything the server sends until it closes the connection, and when it closed (None
    if it was still open at `deadline`, a `time.monotonic()` value). A reset counts as closed."""
    received = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return received, None
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return received, None
        except ConnectionResetError:
            return received, time.monotonic()
        if not data:
            return received, time.monotonic()
        received += data


def read_response(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body (or none): status, headers, body."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        data = sock.recv(65536)
        assert data, f"the connection closed before a whole response head: {buffer!r}"
        buffer += data
    head, _, body = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        data = sock.recv(65536)
        assert data, "the connection closed inside the response body"
        body += data
    return int(status_line.split()[1]), headers, body


def new_upload(server: GuardedServer, length: int) -> tuple[str, dict[str, str]]:
    """A fresh user's upload of `length` bytes: its URL and the user's tus headers."""
    headers = auth(server.token(f"user-{secrets.token_hex(4)}"))
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        session = client.post("/api/v1/sessions", json={"name": "scales"}, headers=headers)
        assert session.status_code == 201, session.text
        created = client.post(
            "/api/v1/videos/tus",
            headers={
                **headers,
                "Upload-Length": str(length),
                "Upload-Metadata": metadata(session_id=session.json()["id"], filename="t.mp4"),
            },
        )
        assert created.status_code == 201, created.text
    return created.headers["Location"], headers


def offset_of(url: str, headers: dict[str, str]) -> int:
    head = httpx.head(url, headers=headers, timeout=30)
    assert head.status_code == 200, head.text
    return int(head.headers["Upload-Offset"])


# -- request heads --------------------------------------------------------------------------


def test_a_head_over_the_size_limit_is_refused_with_431_and_the_connection_closed(
    guarded: GuardedServer,
) -> None:
    with guarded.connect() as sock:
        # a head that never ends, a little past the limit
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * LIMITS.max_head_bytes)
        received, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert received.startswith(b"HTTP/1.1 431 "), received[:100]
    assert closed is not None


def test_a_huge_head_is_cut_off_early_and_other_clients_are_served_meanwhile(
    guarded: GuardedServer,
) -> None:
    """A client sending a 256 MiB header: the server stops reading it a little past the limit
    (the client's writes fail), and answers everybody else promptly all the while."""
    sent = 0
    outcome: list[BaseException] = []

    def flood() -> None:
        nonlocal sent
        piece = b"a" * 65536
        with guarded.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            try:
                while sent < 256 * MIB:
                    sock.sendall(piece)
                    sent += len(piece)
            except OSError as error:  # the server closed the connection
                outcome.append(error)

    flooder = threading.Thread(target=flood, name="flooder")
    flooder.start()
    slowest = 0.0
    with httpx.Client(base_url=guarded.base_url, timeout=10) as client:
        while flooder.is_alive() and slowest < 10:
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
    flooder.join(timeout=30)
    assert outcome, "the server read the whole 256 MiB header"
    assert sent < 16 * MIB  # what the socket buffers hold, not the header
    assert slowest < 2.0


def test_more_header_lines_than_allowed_are_refused_with_431(guarded: GuardedServer) -> None:
    many = {f"X-Line-{n}": "v" for n in range(MAX_HEADER_COUNT)}  # with Host: one too many
    with guarded.connect() as sock:
        sock.sendall(request_head("GET", "/healthz", many))
        status, headers, _ = read_response(sock, time.monotonic() + SLACK)
        _, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert status == 431
    assert headers["connection"] == "close"
    assert closed is not None
    allowed = {f"X-Line-{n}": "v" for n in range(MAX_HEADER_COUNT - 1)}
    with guarded.connect() as sock:
        sock.sendall(request_head("GET", "/healthz", allowed))
        assert read_response(sock, time.monotonic() + SLACK)[0] == 200


def test_a_head_sent_one_line_a_second_is_cut_off_at_the_head_timeout(
    guarded: GuardedServer,
) -> None:
    with guarded.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = None
        for line in range(int(LIMITS.head_timeout + SLACK)):
            try:
                sock.sendall(f"X-Slow-{line}: v\r\n".encode())
            except OSError:
                closed = time.monotonic()
                break
            # the client's pace: a line a second, unless the server closes first
            _, closed = read_until_closed(sock, time.monotonic() + 1.0)
            if closed is not None:
                break
    assert closed is not None, "a head trickled a line a second was never cut off"
    assert LIMITS.head_timeout - 0.5 <= closed - started <= LIMITS.head_timeout + SLACK


def test_a_connection_that_sends_nothing_is_closed_at_the_head_timeout(
    guarded: GuardedServer,
) -> None:
    with guarded.connect() as sock:
        started = time.monotonic()
        received, closed = read_until_closed(sock, started + LIMITS.head_timeout + SLACK)
    assert received == b""
    assert closed is not None, "an unused connection was kept"
    assert closed - started >= LIMITS.head_timeout - 0.5


def test_an_idle_kept_alive_connection_is_closed_at_the_keep_alive_timeout(
    guarded: GuardedServer,
) -> None:
    with guarded.connect() as sock:
        sock.sendall(request_head("GET", "/healthz", {}))
        status, headers, _ = read_response(sock, time.monotonic() + SLACK)
        assert status == 200
        assert headers.get("connection") != "close"
        answered = time.monotonic()
        _, closed = read_until_closed(sock, answered + LIMITS.keep_alive_timeout + SLACK)
    assert closed is not None, "an idle kept-alive connection was kept"
    assert closed - answered >= LIMITS.keep_alive_timeout - 0.5


# -- request bodies and answers -------------------------------------------------------------


@pytest.mark.parametrize("sent", [300, 0])
def test_a_patch_whose_body_stalls_ends_at_the_network_timeout_and_keeps_what_arrived(
    guarded: GuardedServer, sent: int
) -> None:
    """Headers and `sent` bytes of a 1,000-byte body, then nothing: the PATCH ends after
    NETWORK_TIMEOUT_SECONDS with the bytes it received committed, the connection is closed, and
    the upload can be resumed at once (its lock and lease were let go)."""
    data = pattern(1000, seed=sent)
    url, headers = new_upload(guarded, len(data))
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 0), "Content-Length": str(len(data))}
        )
        sock.sendall(head + data[:sent])
        started = time.monotonic()
        status, answer, _ = read_response(sock, started + NETWORK_TIMEOUT + SLACK)
        ended = time.monotonic()
        _, closed = read_until_closed(sock, ended + SLACK)
    assert status == 204
    assert answer["upload-offset"] == str(sent)
    assert answer["connection"] == "close"
    assert closed is not None
    assert NETWORK_TIMEOUT - 0.2 <= ended - started <= NETWORK_TIMEOUT + SLACK

    assert offset_of(url, headers) == sent
    rest = httpx.patch(url, headers=patch_headers(headers, sent), content=data[sent:], timeout=30)
    assert rest.status_code == 204, rest.text
    assert rest.headers["Upload-Offset"] == str(len(data))


class PieceSender:
    """Sends a request head, then `piece` bytes of the body every `interval` seconds, on a
    thread, until the body is sent, the server stops taking it, or `stop` is called."""

    def __init__(
        self, sock: socket.socket, head: bytes, body: bytes, piece: int, interval: float
    ) -> None:
        self.sock, self.head, self.body = sock, head, body
        self.piece, self.interval = piece, interval
        self.sent = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._send, name="piece-sender")

    def _send(self) -> None:
        try:
            self.sock.sendall(self.head)
            while self.sent < len(self.body) and not self._stopped.is_set():
                self.sock.sendall(self.body[self.sent : self.sent + self.piece])
                self.sent += min(self.piece, len(self.body) - self.sent)
                self._stopped.wait(self.interval)
        except OSError:
            pass  # the server closed the connection: what was sent is in `sent`

    def __enter__(self) -> PieceSender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)


def test_a_patch_whose_body_trickles_below_the_minimum_rate_ends_and_keeps_what_arrived(
    guarded: GuardedServer,
) -> None:
    """100 bytes every 0.2 s never waits a whole NETWORK_TIMEOUT for a byte, but brings 500
    bytes a second, under MIN_BODY_RATE_BYTES_PER_SECOND: the PATCH ends after about a
    NETWORK_TIMEOUT of waiting, answers 204 with the bytes it received committed, closes the
    connection, and the upload resumes from there."""
    data = pattern(100_000, seed=3)
    url, headers = new_upload(guarded, len(data))
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 0), "Content-Length": str(len(data))}
        )
        started = time.monotonic()
        with PieceSender(sock, head, data, piece=100, interval=0.2) as sender:
            status, answer, _ = read_response(sock, started + 2 * NETWORK_TIMEOUT + SLACK)
            ended = time.monotonic()
            _, closed = read_until_closed(sock, ended + SLACK)
    assert status == 204
    assert answer["connection"] == "close"
    assert closed is not None
    assert 0 < int(answer["upload-offset"]) <= sender.sent < len(data)
    assert ended - started <= 2 * NETWORK_TIMEOUT + SLACK

    offset = offset_of(url, headers)
    assert offset == int(answer["upload-offset"])
    rest = httpx.patch(
        url, headers=patch_headers(headers, offset), content=data[offset:], timeout=30
    )
    assert rest.status_code == 204, rest.text
    assert rest.headers["Upload-Offset"] == str(len(data))


def test_a_patch_body_slower_than_its_network_but_above_the_minimum_rate_completes(
    guarded: GuardedServer,
) -> None:
    """1,000 bytes every 0.1 s (about 10 kB/s, five times the minimum) for three NETWORK_TIMEOUTs:
    every window of waiting brings enough, so the whole body is taken and the connection kept."""
    data = pattern(30_000, seed=4)
    url, headers = new_upload(guarded, len(data))
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 0), "Content-Length": str(len(data))}
        )
        with PieceSender(sock, head, data, piece=1000, interval=0.1):
            status, answer, _ = read_response(sock, time.monotonic() + 30)
    assert status == 204
    assert answer["upload-offset"] == str(len(data))
    assert answer.get("connection") != "close"


def test_a_body_that_stops_after_an_early_answer_does_not_hold_the_connection(
    guarded: GuardedServer,
) -> None:
    """A PATCH at the wrong offset is answered 409 without its body being read, and its client
    stops sending the body (as tus-js-client in Node does). The answer arrives, with
    `Connection: close`, and the server ends the connection."""
    url, headers = new_upload(guarded, 5 * MIB)
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 1234), "Content-Length": str(5 * MIB)}
        )
        sock.sendall(head + b"x" * 65536)
        status, answer, _ = read_response(sock, time.monotonic() + SLACK)
        _, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert status == 409
    assert answer["connection"] == "close"
    assert closed is not None


def test_a_small_body_answered_early_is_read_and_the_connection_kept(
    guarded: GuardedServer,
) -> None:
    """The rest of a small body behind an early answer is read and dropped, never taken for a
    next request, and the connection serves the next one."""
    url, headers = new_upload(guarded, 1000)
    with guarded.connect() as sock:
        head = request_head("PATCH", url, {**patch_headers(headers, 7), "Content-Length": "100"})
        sock.sendall(head)
        sock.sendall(b"G" * 100)  # the body, in a write of its own
        status, answer, _ = read_response(sock, time.monotonic() + SLACK)
        assert status == 409
        assert answer.get("connection") != "close"
        sock.sendall(request_head("GET", "/healthz", {}))
        assert read_response(sock, time.monotonic() + SLACK)[0] == 200


def test_a_large_body_answered_early_still_gets_its_answer(guarded: GuardedServer) -> None:
    """64 MiB sent at the wrong offset: the server answers 409 with `Connection: close` once it
    has dropped `DRAIN_BYTES`, ends its side of the connection, and goes on reading and dropping
    the body the client is still sending, rather than reset the connection under the answer."""
    size = 64 * MIB
    url, headers = new_upload(guarded, size)
    failures: list[OSError] = []
    with guarded.connect() as sock:
        head = request_head(
            "PATCH", url, {**patch_headers(headers, 99), "Content-Length": str(size)}
        )

        def send_everything() -> None:
            try:
                sock.sendall(head + bytes(size))
            except OSError as error:
                failures.append(error)

        sender = threading.Thread(target=send_everything, name="sender")
        sender.start()
        status, answer, _ = read_response(sock, time.monotonic() + 30)
        sock.settimeout(SLACK)
        after = sock.recv(65536)  # the server's end of the connection: not a reset
        sender.join(timeout=30)
    assert status == 409
    assert answer["connection"] == "close"
    assert after == b""
    assert not failures, failures


def test_a_connection_whose_answer_nobody_reads_is_dropped_at_the_write_timeout(
    guarded: GuardedServer,
) -> None:
    """A client that asks for a video's bytes and stops reading: once the server's writes have
    waited `write_timeout` seconds for it, the server drops the connection."""
    size = 32 * MIB
    url, headers = new_upload(guarded, size)
    done = httpx.patch(url, headers=patch_headers(headers, 0), content=pattern(size), timeout=60)
    assert done.status_code == 204, done.text
    completed = httpx.post(
        f"{guarded.base_url}/api/v1/videos/upload/complete",
        json={"upload_id": url.rsplit("/", 1)[-1]},
        headers=headers,
        timeout=60,
    )
    assert completed.status_code == 200, completed.text
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect((guarded.host, guarded.port))
    with sock:
        video_id = completed.json()["id"]
        sock.sendall(request_head("GET", f"/api/v1/videos/{video_id}/content", headers))
        # the client's behaviour under test: it reads nothing for a while
        time.sleep(LIMITS.write_timeout + 2.0)
        received, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert closed is not None, "the server kept a connection whose answer nobody read"
    assert len(received) < size


# -- `video-upload serve` -------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A real `video-upload serve`: the default server limits, NETWORK_TIMEOUT_SECONDS=1."""
    node = Node(
        env={"JWT_SECRET": SECRET, "NETWORK_TIMEOUT_SECONDS": "1"},
        workdir=tmp_path_factory.mktemp("served"),
    )
    node.start(timeout=180)
    yield node
    node.stop()


def test_serve_refuses_an_oversized_head_and_closes_idle_connections(served: Node) -> None:
    host, port = "127.0.0.1", served.port
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * DEFAULT_LIMITS.max_head_bytes
        )
        received, closed = read_until_closed(sock, time.monotonic() + SLACK)
    assert received.startswith(b"HTTP/1.1 431 "), received[:100]
    assert closed is not None
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(request_head("GET", "/healthz", {}))
        assert read_response(sock, time.monotonic() + SLACK)[0] == 200
        answered = time.monotonic()
        _, closed = read_until_closed(sock, answered + DEFAULT_LIMITS.keep_alive_timeout + SLACK)
    assert closed is not None
    assert closed - answered >= DEFAULT_LIMITS.keep_alive_timeout - 0.5


def test_serve_ends_a_stalled_patch_at_network_timeout_seconds(served: Node) -> None:
    headers = auth(jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET))
    with httpx.Client(base_url=served.base_url, timeout=30) as client:
        session = client.post("/api/v1/sessions", json={"name": "s"}, headers=headers)
        created = client.post(
            "/api/v1/videos/tus",
            headers={
                **headers,
                "Upload-Length": "100",
                "Upload-Metadata": metadata(session_id=session.json()["id"], filename="a.mp4"),
            },
        )
    url = created.headers["Location"]
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        head = request_head("PATCH", url, {**patch_headers(headers, 0), "Content-Length": "100"})
        sock.sendall(head + b"z" * 40)
        started = time.monotonic()
        status, answer, _ = read_response(sock, started + 1.0 + SLACK)
    assert status == 204
    assert answer["upload-offset"] == "40"
    assert time.monotonic() - started < 1.0 + SLACK
