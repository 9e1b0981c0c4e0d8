"""What a video is, by name and type, and what may be kept of a client's file name."""

from __future__ import annotations

import mimetypes
import re
import unicodedata

from video_upload.domain.errors import ERR_NOT_A_VIDEO

# Types mimetypes does not know everywhere, for the containers phones record.
EXTRA_VIDEO_TYPES = {
    ".mov": "video/quicktime",
    ".m4v": "video/x-m4v",
    ".3gp": "video/3gpp",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".mp4": "video/mp4",
}
GENERIC_TYPE = "application/octet-stream"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def display_name(filename: str | None) -> str:
    """The last path component of a client's file name, printable and at most 255 characters.

    Used only for display; nothing on disk or in object keys derives from it.
    """
    if not filename:
        return ""
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("", name).strip()
    if name in {".", ".."}:
        return ""
    return name[:255]


def guess_type(filename: str) -> str | None:
    lower = filename.lower()
    for extension, content_type in EXTRA_VIDEO_TYPES.items():
        if lower.endswith(extension):
            return content_type
    guessed, _ = mimetypes.guess_type(lower)
    return guessed


def video_content_type(declared: str | None, filename: str, *, required: bool) -> str:
    """The upload's content type: the declared one, else the one its name suggests.

    A type that is known and is not a video is refused (415). An unknown type is refused only
    when `required` (the REST API demands a video type; tus clients often send none).
    """
    content_type = (declared or "").split(";", 1)[0].strip().lower() or guess_type(filename)
    if content_type and content_type.startswith("video/"):
        return content_type
    if content_type and content_type != GENERIC_TYPE:
        raise ERR_NOT_A_VIDEO.with_message(f"{content_type} is not a video type")
    if required:
        raise ERR_NOT_A_VIDEO.with_message(
            "content_type is missing and the file name does not say it is a video"
        )
    return GENERIC_TYPE
