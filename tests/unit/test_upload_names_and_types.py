"""What an upload is called and what type it has (`video_upload.lifecycle.media`)."""

from __future__ import annotations

import pytest

from video_upload.domain.errors import ServiceError
from video_upload.lifecycle.media import GENERIC_TYPE, display_name, video_content_type


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("take1.mp4", "take1.mp4"),
        ("/home/me/videos/take1.mp4", "take1.mp4"),
        ("C:\\Users\\me\\take1.mov", "take1.mov"),
        ("../../etc/passwd", "passwd"),
        ("..", ""),
        ("a/.", ""),
        ("bell\x07and\x1bescape\x7f.mp4", "bellandescape.mp4"),
        ("  spaced.mp4  ", "spaced.mp4"),
        (None, ""),
        ("", ""),
        ("e\u0301tude.mp4", "\u00e9tude.mp4"),
    ],
)
def test_only_the_printable_last_path_component_of_a_file_name_is_kept(
    given: str | None, shown: str
) -> None:
    assert display_name(given) == shown


def test_a_long_file_name_is_cut_to_255_characters() -> None:
    assert display_name("x" * 300 + ".mp4") == "x" * 255


@pytest.mark.parametrize(
    ("declared", "filename", "expected"),
    [
        ("video/mp4", "anything.bin", "video/mp4"),
        ("Video/QuickTime; codecs=avc1", "a", "video/quicktime"),
        (None, "take.MOV", "video/quicktime"),
        (None, "take.mkv", "video/x-matroska"),
        (None, "take.3gp", "video/3gpp"),
        ("", "take.webm", "video/webm"),
    ],
)
def test_the_declared_type_wins_else_the_file_name_says(
    declared: str | None, filename: str, expected: str
) -> None:
    assert video_content_type(declared, filename, required=True) == expected


@pytest.mark.parametrize(("declared", "filename"), [("audio/mpeg", "a.mp4"), (None, "notes.txt")])
def test_a_known_type_that_is_not_a_video_is_415(declared: str | None, filename: str) -> None:
    with pytest.raises(ServiceError) as error:
        video_content_type(declared, filename, required=False)

    assert (error.value.kind.code, error.value.kind.status) == ("unsupported_media_type", 415)


def test_an_unknown_type_is_415_only_where_a_video_type_is_required() -> None:
    assert video_content_type(None, "take", required=False) == GENERIC_TYPE
    assert video_content_type(GENERIC_TYPE, "take", required=False) == GENERIC_TYPE
    with pytest.raises(ServiceError):
        video_content_type(None, "take", required=True)
