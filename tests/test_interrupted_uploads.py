"""Connections that drop in the middle of a chunk, resumption, and racing writers."""

from __future__ import annotations

import hashlib
import socket
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from tusclient import client as tus_client

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.tus import (
    checksum,
    complete_and_read,
    create_upload,
    eventually_equal,
    patch_headers,
    pattern,
)

MIB = 1024 * 1024


def send_partial_patch(
    server: LiveServer, url: str, headers: dict[str, str], declared: int, body: bytes
) -> None:
    """Send a PATCH that announces `declared` bytes, send only `body`, then drop the socket."""
    address = urlsplit(server.base_url)
    request = [f"PATCH {url} HTTP/1.1", f"Host: {address.netloc}", f"Content-Length: {declared}"]
    request += [f"{name}: {value}" for name, value in headers.items()]
    raw = ("\r\n".join(request) + "\r\n\r\n").encode() + body
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)


def test_dropped_connection_keeps_received_bytes_and_resume_gives_identical_file(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    data = pattern(3 * MIB, seed=42)
    url = create_upload(client, user.headers, session_id, len(data))
    first = client.patch(url, headers=patch_headers(user.headers, 0), content=data[:MIB])
    assert first.status_code == 204
    delivered = MIB + 300 * 1024
    send_partial_patch(server, url, patch_headers(user.headers, MIB), MIB, data[MIB:delivered])

    def offset() -> str:
        return str(client.head(url, headers=user.headers).headers["Upload-Offset"])

    assert eventually_equal(offset, str(delivered)) == str(delivered)
    rest = client.patch(
        url, headers=patch_headers(user.headers, delivered), content=data[delivered:]
    )
    assert rest.status_code == 204, rest.text
    assert (
        hashlib.sha256(complete_and_read(client, user.bearer, url)).digest()
        == hashlib.sha256(data).digest()
    )


def test_dropped_connection_with_checksum_keeps_none_of_the_chunk(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    data = pattern(2 * MIB, seed=7)
    url = create_upload(client, user.headers, session_id, len(data))
    headers = patch_headers(user.headers, 0, **{"Upload-Checksum": checksum("sha1", data[:MIB])})
    send_partial_patch(server, url, headers, MIB, data[: MIB // 2])
    # The retry waits for the dropped request to let go of the upload, then must find offset 0.
    retry = client.patch(url, headers=headers, content=data[:MIB])
    assert retry.status_code == 204, retry.text
    assert retry.headers["Upload-Offset"] == str(MIB)
    client.patch(url, headers=patch_headers(user.headers, MIB), content=data[MIB:])
    assert complete_and_read(client, user.bearer, url) == data


def test_concurrent_patches_at_one_offset_never_interleave(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    size = 4 * MIB
    url = create_upload(client, user.headers, session_id, size)
    bodies = [bytes([65 + index]) * size for index in range(2)]
    statuses: list[int] = []

    def send(body: bytes) -> None:
        with httpx.Client(base_url=server.base_url, timeout=60) as own:
            statuses.append(
                own.patch(url, headers=patch_headers(user.headers, 0), content=body).status_code
            )

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses)[0] == 204
    assert statuses.count(204) == 1, statuses
    assert set(statuses) - {204} <= {409, 423}
    content = complete_and_read(client, user.bearer, url)
    assert content in bodies


def test_tuspy_uploads_a_multi_chunk_file_with_checksums(
    server: LiveServer, client: httpx.Client, user: User, session_id: str, tmp_path: object
) -> None:
    data = pattern(3 * MIB + 12345, seed=5)
    tus = tus_client.TusClient(
        server.base_url + "/api/v1/videos/tus", headers={"Authorization": f"Bearer {user.token}"}
    )
    import io

    uploader = tus.uploader(
        file_stream=io.BytesIO(data),
        chunk_size=MIB,
        metadata={"session_id": session_id, "filename": "scales.mp4", "filetype": "video/mp4"},
        upload_checksum=True,
    )
    uploader.upload()
    assert uploader.offset == len(data)
    assert uploader.url is not None
    assert complete_and_read(client, user.bearer, uploader.url) == data


def test_stalled_patch_is_superseded_by_the_owners_retry(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    data = pattern(2 * MIB, seed=11)
    url = create_upload(client, user.headers, session_id, len(data))
    address = urlsplit(server.base_url)
    delivered = 700 * 1024
    head = [f"PATCH {url} HTTP/1.1", f"Host: {address.netloc}", f"Content-Length: {len(data)}"]
    head += [f"{name}: {value}" for name, value in patch_headers(user.headers, 0).items()]
    with socket.create_connection((address.hostname, address.port)) as stalled:
        # The phone's connection hangs: part of the body is sent, then nothing, no FIN.
        stalled.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data[:delivered])

        def offset() -> str:
            return str(client.head(url, headers=user.headers).headers["Upload-Offset"])

        assert eventually_equal(offset, str(delivered)) == str(delivered)
        resumed = client.patch(
            url, headers=patch_headers(user.headers, delivered), content=data[delivered:]
        )
        assert resumed.status_code == 204, resumed.text
    assert complete_and_read(client, user.bearer, url) == data


def test_a_writer_whose_lease_was_taken_over_cannot_commit(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    from sqlalchemy import select, update

    from tests.support.rows import orm_session
    from video_upload.persistence.models import VideoRow as Video

    data = pattern(MIB, seed=13)
    url = create_upload(client, user.headers, session_id, len(data))
    upload_id = url.rsplit("/", 1)[1]
    database_url = server.settings.resolved_database_url

    async def lease_owner() -> str | None:
        async with orm_session(database_url) as db:
            query = select(Video.lock_owner).where(Video.upload_id == upload_id)
            owner: str | None = (await db.execute(query)).scalar()
            return owner

    async def set_owner(owner: str | None) -> None:
        # another node took the lease over (as after a lease ran out), or gave it back
        until = server.clock() + timedelta(minutes=5) if owner else None
        async with orm_session(database_url) as db:
            await db.execute(
                update(Video)
                .where(Video.upload_id == upload_id)
                .values(lock_owner=owner, lock_expires_at=until)
            )
            await db.commit()

    address = urlsplit(server.base_url)
    request = [f"PATCH {url} HTTP/1.1", f"Host: {address.netloc}", f"Content-Length: {len(data)}"]
    request += [f"{name}: {value}" for name, value in patch_headers(user.headers, 0).items()]
    with socket.create_connection((address.hostname, address.port)) as writer:
        writer.sendall(("\r\n".join(request) + "\r\n\r\n").encode() + data[: MIB // 2])
        assert eventually_equal(lambda: server.run(lease_owner()) is not None, True) is True
        server.run(set_owner("node-b:1:intruder"))
        writer.settimeout(30)
        answer = writer.recv(4096).decode(errors="replace")  # the writer stops: lease lost
    assert answer.startswith("HTTP/1.1 409"), answer
    server.run(set_owner(None))
    assert client.head(url, headers=user.headers).headers["Upload-Offset"] == "0"
    done = client.patch(url, headers=patch_headers(user.headers, 0), content=data)
    assert done.status_code == 204
    assert complete_and_read(client, user.bearer, url) == data
