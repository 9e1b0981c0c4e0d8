"""The error table (`video_upload.domain.errors`): one named answer for every failure."""

from __future__ import annotations

import pytest

from video_upload.domain import errors
from video_upload.domain.errors import (
    ERR_INVALID_METADATA,
    ERR_STORAGE_FULL,
    ERR_STORAGE_UNAVAILABLE,
    REJECTIONS,
    ErrorKind,
    ServiceError,
)

TABLE = {name: value for name, value in vars(errors).items() if isinstance(value, ErrorKind)}


def test_the_table_is_not_empty() -> None:
    assert len(TABLE) > 20


def test_every_code_names_one_error() -> None:
    codes = [kind.code for kind in TABLE.values()]

    assert sorted(set(codes)) == sorted(codes)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_every_error_is_a_client_or_server_status_with_a_message(name: str) -> None:
    kind = TABLE[name]

    assert 400 <= kind.status <= 599
    assert kind.message
    assert kind.code == kind.code.lower() and " " not in kind.code


def test_errors_a_client_should_retry_say_when() -> None:
    for kind in TABLE.values():
        if kind.status in (503, 507):
            assert int(kind.headers["Retry-After"]) > 0, kind.code


def test_a_new_message_keeps_the_code_status_and_headers_of_its_kind() -> None:
    error = ERR_STORAGE_UNAVAILABLE.with_message("the bucket is throttling", attempt=3)

    assert isinstance(error, ServiceError)
    assert str(error) == "the bucket is throttling"
    assert (error.kind.code, error.kind.status) == ("storage_unavailable", 503)
    assert error.kind.headers == {"Retry-After": "1"}
    assert error.kind.details == {"attempt": 3}


def test_details_are_merged_and_the_table_entry_is_left_unchanged() -> None:
    kind = ErrorKind("x", 400, "x", details={"a": 1})

    error = kind.with_message("y", b=2)

    assert error.kind.details == {"a": 1, "b": 2}
    assert kind.details == {"a": 1} and kind.message == "x"
    assert ERR_INVALID_METADATA.message == "invalid Upload-Metadata"


def test_extra_headers_are_added_to_those_of_the_kind() -> None:
    error = ERR_STORAGE_FULL.with_headers(**{"Retry-After": "5", "X-Free": "0"})

    assert error.kind.headers == {"Retry-After": "5", "X-Free": "0"}
    assert ERR_STORAGE_FULL.headers == {"Retry-After": "60"}
    assert str(error) == ERR_STORAGE_FULL.message


def test_the_probes_rejections_are_found_by_their_code() -> None:
    assert set(REJECTIONS) == {"not_a_video", "video_too_long", "probe_failed"}
    assert all(
        REJECTIONS[code].code == code and REJECTIONS[code].status == 422 for code in REJECTIONS
    )
