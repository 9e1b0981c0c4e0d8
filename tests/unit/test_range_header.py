"""HTTP `Range` requests for a finished video's bytes (`parse_range`, RFC 9110 single ranges)."""

from __future__ import annotations

import pytest

from video_upload.domain.errors import ServiceError
from video_upload.http.rest.videos import parse_range
from video_upload.storage.base import ByteRange


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=990-5000", ByteRange(990, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("bytes=999-999", ByteRange(999, 999)),
        (" bytes=0-0 ", ByteRange(0, 0)),
        ("bytes=10-" + "9" * 40, ByteRange(10, 999)),
        ("bytes=-" + "9" * 40, ByteRange(0, 999)),
    ],
)
def test_a_single_range_is_clipped_to_the_file(header: str, expected: ByteRange) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=-", "bytes=0-1,5-6", "items=0-1", "bytes=a-b", "bytes 0-1", "bytes=5-4"],
)
def test_no_range_a_malformed_or_invalid_one_or_several_ranges_send_the_whole_file(
    header: str | None,
) -> None:
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", 1000),
        ("bytes=1000-2000", 1000),
        ("bytes=" + "9" * 5000 + "-", 1000),
        ("bytes=-0", 1000),
        ("bytes=-1", 0),
    ],
)
def test_an_unsatisfiable_range_is_416_naming_the_size(header: str, size: int) -> None:
    with pytest.raises(ServiceError) as error:
        parse_range(header, size)

    kind = error.value.kind
    assert (kind.code, kind.status) == ("range_not_satisfiable", 416)
    assert kind.headers == {"Content-Range": f"bytes */{size}"}


def test_a_range_knows_its_inclusive_length() -> None:
    assert ByteRange(10, 19).length == 10
    assert ByteRange(0, 0).length == 1
