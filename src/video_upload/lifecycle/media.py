"""What a video is, by name and type, and what may be kept of a client's file name."""

from __future__ import annotations

import mimetypes
import re
import unicodedata

from video_upload.domain.errors import ERR_INVALID_CONTENT_TYPE, ERR_NOT_A_VIDEO

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
MAX_DISPLAY_NAME = 255
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
# A declared type, parameters included, as RFC 9110 spells one (`type/subtype; name=value`):
# printable ASCII only, so it can go back out in a Content-Type header unchanged.
MAX_CONTENT_TYPE = 255
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VALUE = r'"[\x20\x21\x23-\x7e]*"'
MEDIA_TYPE_PATTERN = rf"^{_TOKEN}/{_TOKEN}([ \t]*;[ \t]*{_TOKEN}=({_TOKEN}|{_VALUE}))*[ \t]*$"
_MEDIA_TYPE = re.compile(MEDIA_TYPE_PATTERN)


def display_name(filename: str | None, limit: int | None = MAX_DISPLAY_NAME) -> str:
    """The last path component of a client's file name, printable and at most `limit`
    characters (None: uncut, to guess its type from).

    Used only for display; nothing on disk or in object keys derives from it.
    """
    if not filename:
        return ""
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("", name).strip()
    if name in {".", ".."}:
        return ""
    return name if limit is None else name[:limit]


def guess_type(filename: str) -> str | None:
    lower = filename.lower()
    for extension, content_type in EXTRA_VIDEO_TYPES.items():
        if lower.endswith(extension):
            return content_type
    guessed, _ = mimetypes.guess_type(lower)
    return guessed


def video_content_type(declared: str | None, filename: str, *, required: bool) -> str:
    """The upload's content type: the declared one, else the one its name suggests.

    A declared type that is not a media type (or is longer than MAX_CONTENT_TYPE) is refused
    (400); one that is known and is not a video is refused (415). An unknown type is refused
    only when `required` (the REST API demands a video type; tus clients often send none).
    `filename` is the client's whole name: its type is guessed before the name is cut for
    display.
    """
    declared = (declared or "").strip()
    if declared and (len(declared) > MAX_CONTENT_TYPE or not _MEDIA_TYPE.fullmatch(declared)):
        raise ERR_INVALID_CONTENT_TYPE.with_message(
            f"the content type must be a media type such as video/mp4, "
            f"at most {MAX_CONTENT_TYPE} printable ASCII characters"
        )
    content_type = declared.split(";", 1)[0].strip().lower() or guess_type(filename)
    if content_type and content_type.startswith("video/"):
        return content_type
    if content_type and content_type != GENERIC_TYPE:
        raise ERR_NOT_A_VIDEO.with_message(f"{content_type} is not a video type")
    if required:
        raise ERR_NOT_A_VIDEO.with_message(
            "content_type is missing and the file name does not say it is a video"
        )
    return GENERIC_TYPE
