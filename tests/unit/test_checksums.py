"""Chunk checksums (`video_upload.domain.checksums`) as the tus checksum extension uses them."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.support.tus import checksum
from video_upload.domain.checksums import ALGORITHMS, ExpectedChecksum
from video_upload.http.tus.headers import parse_checksum


def test_the_offered_algorithms_are_the_four_tus_clients_use() -> None:
    assert sorted(ALGORITHMS) == ["md5", "sha1", "sha256", "sha512"]


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_a_running_digest_over_pieces_equals_the_digest_of_the_whole(algorithm: str) -> None:
    data = bytes(range(256)) * 1000
    hasher = ExpectedChecksum(algorithm, b"").new_hasher()

    for start in range(0, len(data), 65_537):
        hasher.update(data[start : start + 65_537])

    assert hasher.digest() == hashlib.new(algorithm, data).digest()


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_a_client_checksum_header_verifies_its_chunk_and_no_other(algorithm: str) -> None:
    expected = parse_checksum(checksum(algorithm, b"the chunk"))
    assert expected is not None

    right, wrong = expected.new_hasher(), expected.new_hasher()
    right.update(b"the chunk")
    wrong.update(b"the chunk!")

    assert right.digest() == expected.digest
    assert wrong.digest() != expected.digest


def test_each_hasher_starts_empty() -> None:
    expected = ExpectedChecksum("sha256", base64.b64decode("AAAA"))
    first = expected.new_hasher()
    first.update(b"abc")

    assert expected.new_hasher().digest() == hashlib.sha256(b"").digest()
