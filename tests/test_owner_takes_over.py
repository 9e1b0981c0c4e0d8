"""A request of the upload's owner wins over an older request that stalled or trickles: the
phone that lost its network and came back must never find its own upload locked."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.tus import create_upload, patch_headers


@contextmanager
def open_patch(
    server: LiveServer, url: str, headers: dict[str, str], declared: int
) -> Iterator[socket.socket]:
    """A PATCH announcing `declared` bytes whose body the caller sends (or not) on the socket."""
    address = urlsplit(server.base_url)
    lines = [
        f"PATCH {urlsplit(url).path} HTTP/1.1",
        f"Host: {address.netloc}",
        f"Content-Length: {declared}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        yield sock


def wait_until_writing(client: httpx.Client, server: LiveServer, user: User, url: str) -> None:
    """Until the open PATCH holds the upload (its writer lease is taken)."""
    upload_id = urlsplit(url).path.rsplit("/", 1)[1]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        video = server.run(server.services.uploads.get(user.id, upload_id))
        if video.lock_owner is not None:
            return
        time.sleep(0.02)
    raise AssertionError("the PATCH never started writing")


def test_the_owners_delete_takes_over_from_a_stalled_patch(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 1000)
    with open_patch(server, url, patch_headers(user.headers, 0), 1000) as stalled:
        stalled.sendall(b"x" * 10)  # then nothing more: the phone lost its network
        wait_until_writing(client, server, user, url)
        deleted = client.delete(url, headers=user.headers)
        assert deleted.status_code == 204, deleted.text
    assert client.head(url, headers=user.headers).status_code == 404


def test_a_trickling_patch_gives_way_to_its_owners_newer_request(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    url = create_upload(client, user.headers, session_id, 1000)
    stop = threading.Event()
    with open_patch(server, url, patch_headers(user.headers, 0), 1000) as trickle:

        def drip() -> None:  # one byte every tenth of a second: never silent for long
            while not stop.is_set():
                try:
                    trickle.sendall(b"t")
                except OSError:
                    return
                stop.wait(0.1)

        dripping = threading.Thread(target=drip)
        trickle.sendall(b"t")
        wait_until_writing(client, server, user, url)
        dripping.start()
        try:
            head = client.head(url, headers=user.headers)
            offset = int(head.headers["Upload-Offset"])
            assert 1 <= offset < 1000  # the trickled bytes were kept
            rest = client.patch(
                url, headers=patch_headers(user.headers, offset), content=b"r" * (1000 - offset)
            )
            assert rest.status_code == 204, rest.text
            assert rest.headers["Upload-Offset"] == "1000"
        finally:
            stop.set()
            dripping.join()
