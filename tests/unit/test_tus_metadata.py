"""The `Upload-Metadata` codec: comma-separated `key base64(value)` pairs."""

from __future__ import annotations

import base64

import pytest

from tests.support.tus import metadata
from video_upload.domain.errors import ServiceError
from video_upload.http.tus.headers import parse_metadata


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_metadata_written_by_a_client_decodes_to_the_same_values() -> None:
    values = {"session_id": "7f0c", "filename": "Étude 1, take 2.mp4", "filetype": "video/mp4"}

    assert parse_metadata(metadata(**values)) == values


def test_a_key_without_a_value_decodes_to_none_with_or_without_its_space() -> None:
    assert parse_metadata("is_confidential,filename ") == {
        "is_confidential": None,
        "filename": None,
    }


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_metadata_is_an_empty_mapping(value: str | None) -> None:
    assert parse_metadata(value) == {}


def test_spaces_around_pairs_are_ignored() -> None:
    assert parse_metadata(f" a {b64('1')} ,  b {b64('2')}") == {"a": "1", "b": "2"}


def test_a_value_that_is_not_utf_8_is_decoded_with_replacement_characters() -> None:
    raw = base64.b64encode(b"take\xff.mp4").decode()

    assert parse_metadata(f"filename {raw}") == {"filename": "take\ufffd.mp4"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"a {b64('1')},a {b64('2')}", "duplicate"),
        ("filename not-base64!", "not base64"),
        (f"filename {b64('x')} extra", "malformed"),
        (f"a {b64('1')},,b {b64('2')}", "malformed"),
        (f"file\tname {b64('1')}", "malformed"),
    ],
)
def test_malformed_metadata_is_400_saying_what_is_wrong(value: str, problem: str) -> None:
    with pytest.raises(ServiceError) as error:
        parse_metadata(value)

    assert (error.value.kind.code, error.value.kind.status) == ("invalid_metadata", 400)
    assert problem in error.value.kind.message
