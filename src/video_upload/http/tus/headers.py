"""Reading, parsing and formatting tus request and response headers (no I/O)."""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from video_upload.domain.checksums import ALGORITHMS, ExpectedChecksum
from video_upload.domain.errors import (
    ERR_INVALID_CHECKSUM,
    ERR_INVALID_CONCAT,
    ERR_INVALID_LENGTH,
    ERR_INVALID_METADATA,
    ERR_INVALID_OFFSET,
    ERR_UNSUPPORTED_CHECKSUM,
    ErrorKind,
)


class RequestHeaders:
    """A request's headers by name, decoded once, in one pass over the ASGI list.

    Starlette's `Headers` scans the list, lower-casing and encoding the name, on every lookup
    (through `Mapping.get`); a tus PATCH looks up seven headers, which cost it more than the
    pass. Names arrive lower-cased (ASGI requires it); a lookup lower-cases the name it is
    given. As with Starlette, a header sent twice reads as its first value.
    """

    __slots__ = ("_values",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        values: dict[str, str] = {}
        for name, value in raw:
            values.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        self._values = values

    def get(self, name: str) -> str | None:
        return self._values.get(name.lower())


_DIGITS = re.compile(r"[0-9]{1,19}")
# Upload-Metadata is stored and sent back on every HEAD: a few names and short values fit well
# within this (tus-js-client sends filename, filetype and the caller's own keys).
MAX_METADATA_BYTES = 4096
_METADATA_KEY = re.compile(r"[^\s,]+")


def parse_non_negative(value: str | None, error: ErrorKind, name: str) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not _DIGITS.fullmatch(value):
        raise error.with_message(f"{name} must be a non-negative integer")
    return int(value)


def parse_offset(value: str | None) -> int:
    offset = parse_non_negative(value, ERR_INVALID_OFFSET, "Upload-Offset")
    if offset is None:
        raise ERR_INVALID_OFFSET.with_message("Upload-Offset is required")
    return offset


def parse_length(value: str | None) -> int | None:
    return parse_non_negative(value, ERR_INVALID_LENGTH, "Upload-Length")


def parse_metadata(value: str | None) -> dict[str, str | None]:
    """Decode `Upload-Metadata`: comma-separated `key base64value` pairs, keys unique, at most
    MAX_METADATA_BYTES in all."""
    result: dict[str, str | None] = {}
    if value is None or not value.strip():
        return result
    if len(value) > MAX_METADATA_BYTES:
        raise ERR_INVALID_METADATA.with_message(
            f"Upload-Metadata is {len(value)} bytes long; at most {MAX_METADATA_BYTES} are kept"
        )
    for pair in value.split(","):
        parts = pair.strip().split(" ")
        if len(parts) > 2 or not parts[0] or not _METADATA_KEY.fullmatch(parts[0]):
            raise ERR_INVALID_METADATA.with_message(f"malformed Upload-Metadata pair {pair!r}")
        key = parts[0]
        if key in result:
            raise ERR_INVALID_METADATA.with_message(f"duplicate Upload-Metadata key {key!r}")
        if len(parts) == 1:
            result[key] = None
            continue
        try:
            decoded = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raise ERR_INVALID_METADATA.with_message(
                f"Upload-Metadata value of {key!r} is not base64"
            ) from None
        result[key] = decoded.decode("utf-8", errors="replace")
    return result


def parse_checksum(value: str | None) -> ExpectedChecksum | None:
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in ALGORITHMS:
        raise ERR_UNSUPPORTED_CHECKSUM.with_message(
            f"unsupported checksum algorithm {algorithm!r}; use one of {','.join(ALGORITHMS)}"
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ERR_INVALID_CHECKSUM.with_message("Upload-Checksum value is not base64") from None
    return ExpectedChecksum(algorithm, digest)


@dataclass(frozen=True)
class ConcatRequest:
    partial: bool
    final_parts: tuple[str, ...] = ()


def parse_concat(value: str | None, upload_path: str) -> ConcatRequest | None:
    """`partial`, or `final;<url> <url> ...` where each URL names an upload under our path."""
    if value is None:
        return None
    value = value.strip()
    if value == "partial":
        return ConcatRequest(partial=True)
    if not value.startswith("final;"):
        raise ERR_INVALID_CONCAT.with_message("Upload-Concat must be 'partial' or 'final;<urls>'")
    urls = value[len("final;") :].split()
    if not urls:
        raise ERR_INVALID_CONCAT.with_message("Upload-Concat final names no partial uploads")
    ids = []
    for url in urls:
        path = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*", "", url).split("?", 1)[0]
        prefix = upload_path.rstrip("/") + "/"
        upload_id = path[len(prefix) :] if path.startswith(prefix) else ""
        if not upload_id or "/" in upload_id:
            raise ERR_INVALID_CONCAT.with_message(f"{url!r} is not an upload of this server")
        ids.append(upload_id)
    return ConcatRequest(partial=False, final_parts=tuple(ids))


def http_date(moment: datetime) -> str:
    """RFC 9110's date format (`Upload-Expires`), for an aware datetime."""
    return _http_date_of_second(int(moment.timestamp()))


@functools.lru_cache(maxsize=256)
def _http_date_of_second(second: int) -> str:
    # Every PATCH sends its new expiry: within a second they are all the same string.
    return email.utils.formatdate(second, usegmt=True)
