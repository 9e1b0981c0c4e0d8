"""Several nodes over one PostgreSQL and one S3 server: nothing lost, whatever fails.

Every node is a real `video-upload serve` process on its own port; the client is a small,
honest tus client that, like tus-js-client, re-synchronises with HEAD after any failure.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from tests.support.faulty_proxy import FaultyProxy
from tests.support.nodes import Node
from tests.support.s3server import (
    create_bucket,
    leftover_objects,
    object_bytes,
    pending_multipart_uploads,
)
from tests.support.tus import TUS_PATH, auth, metadata, patch_headers, pattern

MIB = 1024 * 1024
SECRET = "fault-tests-secret-0123456789abcdef"
RETRYABLE = {409, 423, 500, 502, 503, 504}

NodeFactory = Callable[..., Node]


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"faults-{secrets.token_hex(4)}"
    create_bucket(s3_endpoint, name)
    return name


@pytest.fixture
def make_node(
    postgres_url: str, s3_endpoint: str, bucket: str, tmp_path: Path
) -> Iterator[NodeFactory]:
    nodes: list[Node] = []

    def factory(s3_url: str | None = None) -> Node:
        env = {
            "DATABASE_URL": postgres_url,
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": s3_url or s3_endpoint,
            "S3_BUCKET_NAME": bucket,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "JWT_SECRET": SECRET,
            "UPLOAD_LEASE_SECONDS": "3",
            "DATA_DIR": str(tmp_path / f"data-{len(nodes)}"),
        }
        node = Node(env=env, workdir=tmp_path)
        nodes.append(node)
        return node.start()

    yield factory
    for node in nodes:
        node.kill()


def user_headers() -> dict[str, str]:
    claims = {"sub": f"user-{secrets.token_hex(4)}", "exp": int(time.time()) + 3600}
    return auth(jwt.encode(claims, SECRET, algorithm="HS256"))


def create(node: Node, headers: dict[str, str], length: int) -> str:
    session = httpx.post(f"{node.base_url}/api/v1/sessions", headers=headers, json={}, timeout=30)
    created = httpx.post(
        node.base_url + TUS_PATH,
        headers={
            **headers,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(session_id=session.json()["id"]),
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    # the path alone: the tests send it to whichever node they choose
    return httpx.URL(created.headers["Location"]).path


def server_offset(nodes: list[Node], url: str, headers: dict[str, str]) -> int:
    """HEAD through whichever node answers, retrying transient failures (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        for node in nodes:
            try:
                head = httpx.head(node.base_url + url, headers=headers, timeout=30)
            except httpx.TransportError:
                continue
            if head.status_code == 200:
                return int(head.headers["Upload-Offset"])
            assert head.status_code in RETRYABLE, head.text
        assert time.monotonic() < deadline, "no node answered HEAD"
        time.sleep(0.2)


def upload_resiliently(
    nodes: list[Node],
    url: str,
    headers: dict[str, str],
    data: bytes,
    chunk: int,
    on_chunk: Callable[[int], None] = lambda index: None,
) -> dict[int, int]:
    """Send `data` in chunks, rotating over nodes, re-syncing with HEAD after any failure."""
    statuses: dict[int, int] = {}
    offset, attempt = 0, 0
    deadline = time.monotonic() + 300
    while offset < len(data):
        assert time.monotonic() < deadline, f"upload did not finish: {statuses}"
        node = nodes[attempt % len(nodes)]
        on_chunk(attempt)
        attempt += 1
        try:
            response = httpx.patch(
                node.base_url + url,
                headers=patch_headers(headers, offset),
                content=data[offset : offset + chunk],
                timeout=60,
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code == 204 or response.status_code in RETRYABLE, response.text
            if response.status_code == 204:
                offset = int(response.headers["Upload-Offset"])
                continue
        except httpx.TransportError:
            statuses[0] = statuses.get(0, 0) + 1
        offset = server_offset(
            [n for n in nodes if n.process and n.process.poll() is None], url, headers
        )
    return statuses


def final_object(nodes: list[Node], url: str, headers: dict[str, str]) -> bytes:
    upload_id = url.rsplit("/", 1)[1]
    for node in nodes:
        if node.process is None or node.process.poll() is not None:
            continue
        done = httpx.post(
            f"{node.base_url}/api/v1/videos/upload/complete",
            json={"upload_id": upload_id},
            headers=headers,
            timeout=60,
        )
        assert done.status_code == 200, done.text
        content = httpx.get(
            f"{node.base_url}/api/v1/videos/{done.json()['id']}/content",
            headers=headers,
            timeout=60,
        )
        assert content.status_code == 200
        return content.content
    raise AssertionError("no live node")


def test_alternate_chunks_through_two_nodes_give_an_identical_object(
    make_node: NodeFactory, s3_endpoint: str, bucket: str
) -> None:
    nodes = [make_node(), make_node()]
    headers = user_headers()
    data = pattern(12 * MIB + 777, seed=61)
    url = create(nodes[0], headers, len(data))
    statuses = upload_resiliently(nodes, url, headers, data, chunk=MIB + 12345)
    assert set(statuses) == {204}, statuses
    assert (
        hashlib.sha256(final_object(nodes, url, headers)).digest() == hashlib.sha256(data).digest()
    )
    key = f"uploads/{url.rsplit('/', 1)[1]}"
    assert object_bytes(s3_endpoint, bucket, key) == data
    assert pending_multipart_uploads(s3_endpoint, bucket) == []
    assert leftover_objects(s3_endpoint, bucket) == [key]


def test_sigkill_mid_patch_then_resume_on_the_other_node(make_node: NodeFactory) -> None:
    nodes = [make_node(), make_node()]
    headers = user_headers()
    data = pattern(16 * MIB, seed=62)
    url = create(nodes[0], headers, len(data))
    offset, attempt, kills = 0, 0, 0
    while offset < len(data):
        node = nodes[attempt % 2]
        attempt += 1
        if node.process is not None and node.process.poll() is not None:
            node.start()
        end = min(len(data), offset + 3 * MIB)
        kill_this_one = kills < 3 and attempt % 2 == 0

        def body(
            start: int = offset, stop: int = end, victim: Node = node, kill: bool = kill_this_one
        ) -> Iterator[bytes]:
            middle = (start + stop) // 2
            yield data[start:middle]
            if kill:
                victim.kill()  # SIGKILL while the PATCH is half sent
            yield data[middle:stop]

        try:
            response = httpx.patch(
                node.base_url + url,
                headers=patch_headers(headers, offset),
                content=body(),
                timeout=60,
            )
            assert response.status_code in {204} | RETRYABLE, response.text
        except httpx.TransportError:
            pass
        kills += kill_this_one
        live = [n for n in nodes if n.process is not None and n.process.poll() is None]
        reported = server_offset(live, url, headers)
        assert offset <= reported <= end, "the offset must never claim bytes nobody sent"
        offset = reported
    assert kills == 3
    for node in nodes:
        if node.process is not None and node.process.poll() is not None:
            node.start()
    assert (
        hashlib.sha256(final_object(nodes, url, headers)).digest() == hashlib.sha256(data).digest()
    )


def test_concurrent_patches_through_two_nodes_one_wins(make_node: NodeFactory) -> None:
    nodes = [make_node(), make_node()]
    headers = user_headers()
    size = 6 * MIB
    url = create(nodes[0], headers, size)
    bodies = [bytes([97 + index]) * size for index in range(2)]
    statuses: list[int] = [0, 0]
    barrier = threading.Barrier(2)

    def send(index: int) -> None:
        barrier.wait()
        response = httpx.patch(
            nodes[index].base_url + url,
            headers=patch_headers(headers, 0),
            content=bodies[index],
            timeout=60,
        )
        statuses[index] = response.status_code

    threads = [threading.Thread(target=send, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses)[0] == 204 and statuses.count(204) == 1, statuses
    assert set(statuses) - {204} <= {409, 423}, statuses
    winner = bodies[statuses.index(204)]
    offset = server_offset(nodes, url, headers)
    if offset < size:  # the winner was cut short (it stalled): it finishes its own bytes
        upload_resiliently(nodes, url, headers, winner, chunk=size)
    assert final_object(nodes, url, headers) == winner


def test_stalled_patch_on_one_node_is_superseded_through_another(
    make_node: NodeFactory,
) -> None:
    nodes = [make_node(), make_node()]
    headers = user_headers()
    data = pattern(3 * MIB, seed=63)
    url = create(nodes[0], headers, len(data))
    delivered = MIB + 4321
    request = [
        f"PATCH {url} HTTP/1.1",
        f"Host: 127.0.0.1:{nodes[0].port}",
        f"Content-Length: {len(data)}",
    ]
    request += [f"{name}: {value}" for name, value in patch_headers(headers, 0).items()]
    with socket.create_connection(("127.0.0.1", nodes[0].port)) as stalled:
        stalled.sendall(("\r\n".join(request) + "\r\n\r\n").encode() + data[:delivered])
        began = time.monotonic()
        deadline = began + 30
        offset = server_offset([nodes[1]], url, headers)
        while offset != delivered and time.monotonic() < deadline:
            offset = server_offset([nodes[1]], url, headers)
        superseded_after = time.monotonic() - began
        assert offset == delivered
        rest = httpx.patch(
            nodes[1].base_url + url,
            headers=patch_headers(headers, delivered),
            content=data[delivered:],
            timeout=60,
        )
        assert rest.status_code == 204, rest.text
    assert superseded_after < 10, f"the retry waited {superseded_after:.1f}s"
    assert final_object(nodes, url, headers) == data


def test_s3_failing_a_fraction_of_calls_gives_retryable_errors_and_a_correct_object(
    make_node: NodeFactory, s3_endpoint: str, bucket: str
) -> None:
    proxy = FaultyProxy(s3_endpoint, failure_rate=0.2, seed=7).start()
    try:
        nodes = [make_node(proxy.url), make_node(proxy.url)]
        headers = user_headers()
        data = pattern(14 * MIB + 99, seed=64)
        url = upload_url_with_retries(nodes, headers, len(data))
        statuses = upload_resiliently(nodes, url, headers, data, chunk=2 * MIB)
        assert set(statuses) <= {204} | RETRYABLE, statuses
        content = final_object_with_retries(nodes, url, headers)
    finally:
        proxy.stop()
    assert proxy.counts["failed before forwarding"] + proxy.counts["failed after forwarding"] > 0
    assert hashlib.sha256(content).digest() == hashlib.sha256(data).digest()


def upload_url_with_retries(nodes: list[Node], headers: dict[str, str], length: int) -> str:
    for _ in range(20):
        try:
            return create(nodes[0], headers, length)
        except AssertionError:
            continue
    raise AssertionError("creation never succeeded")


def final_object_with_retries(nodes: list[Node], url: str, headers: dict[str, str]) -> bytes:
    last: AssertionError | None = None
    for _ in range(20):
        try:
            return final_object(nodes, url, headers)
        except AssertionError as error:
            last = error
    raise AssertionError(f"completion never succeeded: {last}")


def test_database_outage_gives_503_and_the_upload_continues_afterwards(
    make_node: NodeFactory, postgres_url: str
) -> None:
    nodes = [make_node(), make_node()]
    headers = user_headers()
    data = pattern(8 * MIB, seed=65)
    url = create(nodes[0], headers, len(data))
    first = httpx.patch(
        nodes[0].base_url + url,
        headers=patch_headers(headers, 0),
        content=data[: 2 * MIB],
        timeout=60,
    )
    assert first.status_code == 204
    database = postgres_url.rsplit("/", 1)[1]
    admin = postgres_url.rsplit("/", 1)[0].replace("postgresql+asyncpg", "postgresql") + "/postgres"
    outage(admin, database, allow=False)
    try:
        during = httpx.patch(
            nodes[1].base_url + url,
            headers=patch_headers(headers, 2 * MIB),
            content=data[2 * MIB : 4 * MIB],
            timeout=60,
        )
        head = httpx.head(nodes[0].base_url + url, headers=headers, timeout=60)
    finally:
        outage(admin, database, allow=True)
    assert during.status_code == 503, during.text
    assert head.status_code == 503
    assert during.headers.get("Retry-After")
    statuses = upload_resiliently(nodes, url, headers, data, chunk=2 * MIB)
    assert set(statuses) <= {204} | RETRYABLE
    assert final_object(nodes, url, headers) == data


def outage(admin_dsn: str, database: str, *, allow: bool) -> None:
    """Refuse (or again allow) connections to `database` and cut the existing ones."""
    import asyncio

    async def run() -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(
                f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allow).lower()}'
            )
            if not allow:
                await connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    database,
                )
        finally:
            await connection.close()

    asyncio.run(run())
