"""Parsing and formatting tus headers (`video_upload.http.tus.headers`), without a server."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from video_upload.domain.errors import ServiceError
from video_upload.http.tus.headers import (
    ConcatRequest,
    RequestHeaders,
    http_date,
    parse_checksum,
    parse_concat,
    parse_length,
    parse_offset,
)

UPLOADS = "/api/v1/videos/tus"


def code_of(error: pytest.ExceptionInfo[ServiceError]) -> tuple[str, int]:
    return error.value.kind.code, error.value.kind.status


def test_request_headers_are_found_by_any_case_and_a_repeated_header_reads_as_its_first() -> None:
    headers = RequestHeaders(
        [(b"upload-offset", b"10"), (b"upload-offset", b"20"), (b"tus-resumable", b"1.0.0")]
    )

    assert headers.get("Upload-Offset") == "10"
    assert headers.get("TUS-RESUMABLE") == "1.0.0"
    assert headers.get("Upload-Length") is None


def test_request_headers_decode_bytes_beyond_ascii_as_latin_1() -> None:
    assert RequestHeaders([(b"x-name", "é".encode("latin-1"))]).get("x-name") == "é"


@pytest.mark.parametrize(("raw", "offset"), [("0", 0), (" 42 ", 42), ("9" * 19, int("9" * 19))])
def test_offset_is_a_non_negative_decimal_integer(raw: str, offset: int) -> None:
    assert parse_offset(raw) == offset


@pytest.mark.parametrize("raw", ["-1", "1.5", "0x10", "1e3", "", "+3", "9" * 20, "١٢"])
def test_offset_that_is_not_a_plain_non_negative_integer_is_400(raw: str) -> None:
    with pytest.raises(ServiceError) as error:
        parse_offset(raw)

    assert code_of(error) == ("invalid_upload_offset", 400)
    assert "Upload-Offset" in str(error.value.kind.message)


def test_missing_offset_is_400_saying_it_is_required() -> None:
    with pytest.raises(ServiceError) as error:
        parse_offset(None)

    assert code_of(error) == ("invalid_upload_offset", 400)
    assert "required" in error.value.kind.message


def test_missing_length_means_no_length_and_a_bad_one_is_400() -> None:
    assert parse_length(None) is None
    assert parse_length("1048576") == 1048576
    with pytest.raises(ServiceError) as error:
        parse_length("ten")
    assert code_of(error) == ("invalid_upload_length", 400)


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256", "sha512", "SHA256"])
def test_checksum_header_names_the_algorithm_and_carries_the_raw_digest(algorithm: str) -> None:
    digest = hashlib.new(algorithm.lower(), b"chunk").digest()

    expected = parse_checksum(f"{algorithm} {base64.b64encode(digest).decode()}")

    assert expected is not None
    assert (expected.algorithm, expected.digest) == (algorithm.lower(), digest)


def test_no_checksum_header_means_no_check() -> None:
    assert parse_checksum(None) is None


def test_checksum_with_an_unsupported_algorithm_is_400_listing_the_supported_ones() -> None:
    with pytest.raises(ServiceError) as error:
        parse_checksum("crc32 AAAAAA==")

    assert code_of(error) == ("unsupported_checksum_algorithm", 400)
    assert "sha256" in error.value.kind.message


@pytest.mark.parametrize("value", ["sha256 not*base64", "sha256 YWJ", "sha256 YW Jj"])
def test_checksum_whose_digest_is_not_base64_is_400(value: str) -> None:
    with pytest.raises(ServiceError) as error:
        parse_checksum(value)

    assert code_of(error) == ("invalid_checksum", 400)


def test_concat_partial_and_no_header() -> None:
    assert parse_concat(None, UPLOADS) is None
    assert parse_concat(" partial ", UPLOADS) == ConcatRequest(partial=True)


def test_concat_final_lists_the_upload_ids_in_order_from_relative_or_absolute_urls() -> None:
    value = f"final;{UPLOADS}/b https://videos.example/api/v1/videos/tus/a?x=1 {UPLOADS}/c"

    assert parse_concat(value, UPLOADS) == ConcatRequest(partial=False, final_parts=("b", "a", "c"))


@pytest.mark.parametrize(
    "value",
    [
        "whole",
        "final;",
        "final;   ",
        "final;/somewhere/else/abc",
        f"final;{UPLOADS}/",
        f"final;{UPLOADS}/a/b",
        f"final;{UPLOADS}",
        f"final;{UPLOADS}extra/abc",
    ],
)
def test_concat_that_is_malformed_or_names_a_foreign_url_is_400(value: str) -> None:
    with pytest.raises(ServiceError) as error:
        parse_concat(value, UPLOADS)

    assert code_of(error) == ("invalid_concat", 400)


def test_http_date_is_rfc_9110_in_gmt_whatever_the_zone_of_the_moment() -> None:
    moment = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)

    assert http_date(moment) == "Sun, 01 Mar 2026 12:30:05 GMT"
    assert http_date(moment.astimezone(timezone(timedelta(hours=-5)))) == http_date(moment)


def test_http_date_drops_fractions_of_a_second() -> None:
    moment = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)

    assert http_date(moment + timedelta(milliseconds=999)) == http_date(moment)
