"""The S3 store through the tus endpoint: part economy, crash recovery, clean aborts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import User, make_settings, new_session, new_user
from tests.support.live import LiveServer, start_server
from tests.support.s3server import leftover_objects, object_bytes, pending_multipart_uploads
from tests.support.tus import create_upload, patch_headers, pattern
from video_upload.config import Settings
from video_upload.storage.base import (
    StagingArea,
    StorageError,
    StoredUpload,
    UploadStore,
    WriteResult,
)
from video_upload.storage.factory import open_store
from video_upload.storage.s3 import S3Store

MIB = 1024 * 1024


class CrashAfterWrite:
    """Wraps a store: chosen writes reach S3, then the node 'dies' before the database commit.

    The service sees a failure (as a client would see a dead node), and nothing is cleaned up,
    exactly as after a crash.
    """

    def __init__(self, inner: UploadStore) -> None:
        self.inner = inner
        self.crash_next_write = False

    async def write(self, upload: StoredUpload, stream: Any) -> WriteResult:
        result = await self.inner.write(upload, stream)
        if self.crash_next_write:
            self.crash_next_write = False
            self.crashed = True
            raise StorageError("simulated crash between the S3 write and the database commit")
        return result

    async def discard(self, committed: StoredUpload, abandoned: WriteResult) -> None:
        if getattr(self, "crashed", False):
            self.crashed = False
            return  # a crashed node cleans nothing up
        await self.inner.discard(committed, abandoned)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module", params=["sqlite-s3", "postgres-s3"])
def s3_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(request, tmp_path_factory.mktemp("s3"), request.param)

    async def opener(configured: Settings, staging: StagingArea) -> UploadStore:
        return CrashAfterWrite(await open_store(configured, staging))

    live = start_server(request.param, settings, store_opener=opener)
    yield live
    live.stop()


@pytest.fixture
def s3_client(s3_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=s3_server.base_url, timeout=120) as http:
        yield http


@pytest.fixture
def s3_user(s3_server: LiveServer, s3_client: httpx.Client) -> tuple[User, str]:
    user = new_user(s3_server)
    return user, new_session(s3_client, user)


def bucket_of(server: LiveServer) -> tuple[str, str]:
    return server.settings.s3_endpoint_url, server.settings.s3_bucket_name


def counts(server: LiveServer) -> dict[str, int]:
    store = server.store
    inner = getattr(store, "inner", store)
    assert isinstance(inner, S3Store)
    return dict(inner.request_counts)


def complete(client: httpx.Client, user: User, url: str) -> dict[str, Any]:
    done = client.post(
        "/api/v1/videos/upload/complete",
        json={"upload_id": url.rsplit("/", 1)[1]},
        headers=user.bearer,
    )
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    return result


def test_50_mib_in_mixed_chunks_is_identical_with_one_upload_part_per_5_mib(
    s3_server: LiveServer, s3_client: httpx.Client, s3_user: tuple[User, str]
) -> None:
    user, session_id = s3_user
    pieces = [1, 100 * 1024, MIB, 5 * MIB, 7 * MIB, 3 * MIB + 17, 5 * MIB]
    sizes: list[int] = []
    while sum(sizes) < 50 * MIB:
        sizes.append(min(pieces[len(sizes) % len(pieces)], 50 * MIB - sum(sizes)))
    data = pattern(50 * MIB, seed=71)
    url = create_upload(s3_client, user.headers, session_id, len(data))
    before = counts(s3_server)
    offset = 0
    for size in sizes:
        response = s3_client.patch(
            url, headers=patch_headers(user.headers, offset), content=data[offset : offset + size]
        )
        assert response.status_code == 204, response.text
        offset += size
    after = counts(s3_server)
    video = complete(s3_client, user, url)
    endpoint, bucket = bucket_of(s3_server)
    stored = object_bytes(endpoint, bucket, f"uploads/{url.rsplit('/', 1)[1]}")
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    upload_parts = after.get("UploadPart", 0) - before.get("UploadPart", 0)
    assert 10 <= upload_parts <= 11, upload_parts  # 50 MiB / 5 MiB, plus the small last part
    assert video["size"] == len(data)


def test_aligned_5_mib_chunks_cost_one_upload_part_each(
    s3_server: LiveServer, s3_client: httpx.Client, s3_user: tuple[User, str]
) -> None:
    user, session_id = s3_user
    data = pattern(15 * MIB, seed=72)
    url = create_upload(s3_client, user.headers, session_id, len(data))
    for index in range(3):
        before = counts(s3_server)
        response = s3_client.patch(
            url,
            headers=patch_headers(user.headers, index * 5 * MIB),
            content=data[index * 5 * MIB : (index + 1) * 5 * MIB],
        )
        assert response.status_code == 204
        spent = {
            op: n - before.get(op, 0)
            for op, n in counts(s3_server).items()
            if n != before.get(op, 0)
        }
        if index < 2:
            assert spent == {"UploadPart": 1}, spent
    complete(s3_client, user, url)


def test_crash_between_s3_write_and_commit_resumes_to_an_identical_object(
    s3_server: LiveServer, s3_client: httpx.Client, s3_user: tuple[User, str]
) -> None:
    user, session_id = s3_user
    data = pattern(13 * MIB + 5, seed=73)
    url = create_upload(s3_client, user.headers, session_id, len(data))
    first = s3_client.patch(url, headers=patch_headers(user.headers, 0), content=data[: 3 * MIB])
    assert first.status_code == 204
    store = s3_server.store
    assert isinstance(store, CrashAfterWrite)
    store.crash_next_write = True
    crashed = s3_client.patch(
        url, headers=patch_headers(user.headers, 3 * MIB), content=data[3 * MIB : 9 * MIB]
    )
    assert crashed.status_code == 503
    head = s3_client.head(url, headers=user.headers)
    assert head.headers["Upload-Offset"] == str(3 * MIB)
    offset = 3 * MIB
    for end in (7 * MIB, 11 * MIB, len(data)):
        response = s3_client.patch(
            url, headers=patch_headers(user.headers, offset), content=data[offset:end]
        )
        assert response.status_code == 204, response.text
        offset = end
    complete(s3_client, user, url)
    endpoint, bucket = bucket_of(s3_server)
    key = f"uploads/{url.rsplit('/', 1)[1]}"
    assert object_bytes(endpoint, bucket, key) == data
    assert [k for k in leftover_objects(endpoint, bucket) if k.startswith(key)] == [key]


@pytest.mark.parametrize("how", ["tus termination", "REST abort"])
def test_aborting_leaves_nothing_in_the_bucket_or_the_database(
    s3_server: LiveServer, s3_client: httpx.Client, s3_user: tuple[User, str], how: str
) -> None:
    user, session_id = s3_user
    data = pattern(7 * MIB + 3, seed=74)
    url = create_upload(s3_client, user.headers, session_id, 20 * MIB)
    s3_client.patch(url, headers=patch_headers(user.headers, 0), content=data)  # a part + staging
    key = f"uploads/{url.rsplit('/', 1)[1]}"
    endpoint, bucket = bucket_of(s3_server)
    assert any(k.startswith(key) for k in pending_multipart_uploads(endpoint, bucket))
    staging = s3_server.services.database.staging  # S3_STAGING=database, the default

    def staged_remainder() -> bytes | None:
        return s3_server.run(staging.get(key, 5 * MIB, 2 * MIB + 3))

    assert staged_remainder() == data[5 * MIB :]
    if how == "tus termination":
        response = s3_client.delete(url, headers=user.headers)
    else:
        response = s3_client.delete(
            f"/api/v1/videos/upload/{url.rsplit('/', 1)[1]}", headers=user.bearer
        )
    assert response.status_code == 204
    assert [k for k in leftover_objects(endpoint, bucket) if k.startswith(key)] == []
    assert [k for k in pending_multipart_uploads(endpoint, bucket) if k.startswith(key)] == []
    assert staged_remainder() is None


def test_aborting_a_finished_upload_deletes_its_object(
    s3_server: LiveServer, s3_client: httpx.Client, s3_user: tuple[User, str]
) -> None:
    user, session_id = s3_user
    url = create_upload(s3_client, user.headers, session_id, 10)
    s3_client.patch(url, headers=patch_headers(user.headers, 0), content=b"0123456789")
    key = f"uploads/{url.rsplit('/', 1)[1]}"
    endpoint, bucket = bucket_of(s3_server)
    assert key in leftover_objects(endpoint, bucket)
    assert s3_client.delete(url, headers=user.headers).status_code == 204
    assert key not in leftover_objects(endpoint, bucket)


def test_content_is_streamed_from_s3_with_ranges(
    s3_server: LiveServer, s3_client: httpx.Client, s3_user: tuple[User, str]
) -> None:
    user, session_id = s3_user
    data = pattern(6 * MIB + 1, seed=75)
    url = create_upload(s3_client, user.headers, session_id, len(data))
    s3_client.patch(url, headers=patch_headers(user.headers, 0), content=data)
    video = complete(s3_client, user, url)
    part = s3_client.get(
        f"/api/v1/videos/{video['id']}/content",
        headers={**user.bearer, "Range": f"bytes={5 * MIB - 10}-{5 * MIB + 9}"},
    )
    assert part.status_code == 206
    assert part.content == data[5 * MIB - 10 : 5 * MIB + 10]
    assert part.headers["Content-Range"] == f"bytes {5 * MIB - 10}-{5 * MIB + 9}/{len(data)}"
