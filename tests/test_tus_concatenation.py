"""tus concatenation and concatenation-unfinished: parallel partial uploads, one final video."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer
from tests.support.tus import TUS_PATH, complete_and_read, metadata, patch_headers, pattern


def create_partial(client: httpx.Client, user: User, length: int) -> str:
    response = client.post(
        TUS_PATH, headers={**user.headers, "Upload-Length": str(length), "Upload-Concat": "partial"}
    )
    assert response.status_code == 201, response.text
    return str(response.headers["Location"])


def upload(client: httpx.Client, user: User, url: str, data: bytes) -> None:
    response = client.patch(url, headers=patch_headers(user.headers, 0), content=data)
    assert response.status_code == 204, response.text


def create_final(
    client: httpx.Client, user: User, session_id: str, parts: list[str], **extra: str
) -> httpx.Response:
    return client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Concat": "final;" + " ".join(parts),
            "Upload-Metadata": metadata(session_id=session_id, filename="duet.mp4"),
            **extra,
        },
    )


def test_partial_upload_needs_no_session_and_head_echoes_partial(
    client: httpx.Client, user: User
) -> None:
    url = create_partial(client, user, 10)
    head = client.head(url, headers=user.headers)
    assert head.headers["Upload-Concat"] == "partial"
    assert head.headers["Upload-Offset"] == "0"


def test_final_upload_joins_partials_in_order_byte_for_byte(
    client: httpx.Client, user: User, session_id: str
) -> None:
    chunks = [pattern(6 * 1024 * 1024, seed=1), pattern(300_000, seed=2), pattern(5, seed=3)]
    parts = [create_partial(client, user, len(chunk)) for chunk in chunks]
    for url, chunk in zip(parts, chunks, strict=True):
        upload(client, user, url, chunk)
    final = create_final(client, user, session_id, parts)
    assert final.status_code == 201, final.text
    head = client.head(final.headers["Location"], headers=user.headers)
    assert head.headers["Upload-Length"] == str(sum(map(len, chunks)))
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"]
    assert head.headers["Upload-Concat"].startswith("final;")
    assert complete_and_read(client, user.bearer, final.headers["Location"]) == b"".join(chunks)


def test_final_upload_may_be_created_before_its_partials_finish(
    client: httpx.Client, user: User, session_id: str
) -> None:
    chunks = [pattern(1000, seed=4), pattern(2000, seed=5)]
    parts = [create_partial(client, user, len(chunk)) for chunk in chunks]
    upload(client, user, parts[0], chunks[0])
    final = create_final(client, user, session_id, parts)
    assert final.status_code == 201, final.text
    url = final.headers["Location"]
    unfinished = client.head(url, headers=user.headers)
    assert unfinished.status_code == 200
    assert "Upload-Offset" not in unfinished.headers
    assert unfinished.headers["Upload-Length"] == "3000"
    upload(client, user, parts[1], chunks[1])
    finished = client.head(url, headers=user.headers)
    assert finished.headers["Upload-Offset"] == "3000"
    assert complete_and_read(client, user.bearer, url) == b"".join(chunks)


def test_final_upload_accepts_the_partials_paths_as_well_as_their_urls(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    parts = [create_partial(client, user, 3) for _ in range(2)]
    for url in parts:
        upload(client, user, url, b"abc")
    assert all(url.startswith(server.base_url) for url in parts)  # Location is absolute
    paths = [httpx.URL(url).path for url in parts]
    final = create_final(client, user, session_id, paths)
    assert final.status_code == 201, final.text
    assert complete_and_read(client, user.bearer, final.headers["Location"]) == b"abcabc"


def test_final_upload_with_upload_length_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    parts = [create_partial(client, user, 3)]
    response = create_final(client, user, session_id, parts, **{"Upload-Length": "3"})
    assert response.status_code == 400


def test_final_upload_of_unknown_or_foreign_partials_is_refused(
    client: httpx.Client, user: User, other_user: User, session_id: str
) -> None:
    unknown = create_final(client, user, session_id, [f"{TUS_PATH}/nosuchupload"])
    assert unknown.status_code in (400, 404)
    foreign = create_partial(client, other_user, 3)
    upload(client, other_user, foreign, b"abc")
    stolen = create_final(client, user, session_id, [foreign])
    assert stolen.status_code in (400, 404)


def test_final_upload_of_a_non_partial_upload_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    plain = client.post(
        TUS_PATH,
        headers={
            **user.headers,
            "Upload-Length": "3",
            "Upload-Metadata": metadata(session_id=session_id),
        },
    )
    response = create_final(client, user, session_id, [plain.headers["Location"]])
    assert response.status_code == 400


@pytest.mark.any_backend
def test_final_upload_pointing_outside_the_tus_endpoint_returns_400(
    client: httpx.Client, user: User, session_id: str
) -> None:
    response = create_final(client, user, session_id, ["/etc/passwd"])
    assert response.status_code == 400


def test_patch_on_a_final_upload_returns_403(
    client: httpx.Client, user: User, session_id: str
) -> None:
    parts = [create_partial(client, user, 3)]
    final = create_final(client, user, session_id, parts)
    response = client.patch(
        final.headers["Location"], headers=patch_headers(user.headers, 0), content=b"abc"
    )
    assert response.status_code == 403


def test_final_upload_belongs_to_the_session_in_its_own_metadata(
    client: httpx.Client, user: User, session_id: str
) -> None:
    parts = [create_partial(client, user, 3)]
    upload(client, user, parts[0], b"abc")
    final = create_final(client, user, session_id, parts)
    listed = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer).json()
    assert [video["upload_id"] for video in listed] == [final.headers["Location"].rsplit("/", 1)[1]]


def test_final_upload_in_someone_elses_session_returns_403(
    client: httpx.Client, user: User, other_user: User, session_id: str
) -> None:
    parts = [create_partial(client, other_user, 3)]
    response = create_final(client, other_user, session_id, parts)
    assert response.status_code == 403


def test_consumed_partials_are_freed_after_assembly(
    client: httpx.Client, user: User, session_id: str
) -> None:
    parts = [create_partial(client, user, 3) for _ in range(2)]
    for url in parts:
        upload(client, user, url, b"xyz")
    final = create_final(client, user, session_id, parts)
    assert final.status_code == 201
    for url in parts:
        assert client.head(url, headers=user.headers).status_code in (404, 410)


def test_a_partial_listed_twice_in_one_final_is_refused(
    client: httpx.Client, user: User, session_id: str
) -> None:
    """Each listing copies the partial's bytes: one partial listed a hundred times would turn a
    MiB sent into a hundred on disk."""
    part = create_partial(client, user, 4)
    upload(client, user, part, b"abcd")
    refused = create_final(client, user, session_id, [part, part])
    assert refused.status_code == 400
    assert "only once" in refused.text
    assert client.head(part, headers=user.headers).headers["Upload-Offset"] == "4"


def test_a_partial_of_an_unfinished_final_cannot_join_a_second_one(
    client: httpx.Client, user: User, session_id: str
) -> None:
    part = create_partial(client, user, 4)  # never finished: the first final waits for it
    first = create_final(client, user, session_id, [part])
    assert first.status_code == 201, first.text
    second = create_final(client, user, session_id, [part])
    assert second.status_code == 400
    assert "already belongs" in second.text
    upload(client, user, part, b"abcd")
    assert complete_and_read(client, user.bearer, first.headers["Location"]) == b"abcd"
