"""How the direct statements (`persistence.direct`) convert values to and from each back end,
exactly as the ORM's column types (`persistence.models`) store and read them.

Every column has a kind, taken from its SQLAlchemy type; each back end has one codec per kind:
an encoder for parameters and a decoder for returned values (None where the driver's own value
is already the ORM's). What SQLAlchemy does, and so what these do:

| kind | column type | SQLite stores | PostgreSQL stores (asyncpg gives) |
| --- | --- | --- | --- |
| UUID | `Uuid` | 32 lowercase hex digits | `uuid` (asyncpg's UUID, kept) |
| TIMESTAMP | `UTCDateTime` | naive UTC, `YYYY-MM-DD HH:MM:SS.ffffff` | `timestamptz` (in UTC) |
| JSON | `JSON` | the text of `json.dumps` | `json`: the same text |
| BOOL | `Boolean` | the integer 0 or 1 | `boolean` |
| PLAIN | strings, numbers, `LargeBinary` | as given (bytes: a BLOB) | as given (`bytea`) |

A naive datetime is refused (ValueError), as `UTCDateTime` refuses it. None is SQL NULL, except
for JSON, where SQLAlchemy stores Python's None as the JSON text `null` (these statements never
write it: the upload's state is always an object).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, LargeBinary, String, Table, Uuid
from sqlalchemy.types import TypeEngine

from video_upload.persistence.models import UTCDateTime

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


class Kind(Enum):
    PLAIN = "plain"
    UUID = "uuid"
    TIMESTAMP = "timestamp"
    JSON = "json"
    BOOL = "bool"


def kind_of(column_type: TypeEngine[Any]) -> Kind:
    """The kind of a column of `persistence.models`; TypeError for a type no codec is written
    for (a new column type needs its codecs here first)."""
    if isinstance(column_type, UTCDateTime):
        return Kind.TIMESTAMP
    if isinstance(column_type, Uuid):
        return Kind.UUID
    if isinstance(column_type, JSON):
        return Kind.JSON
    if isinstance(column_type, Boolean):
        return Kind.BOOL
    if isinstance(column_type, String | Integer | Float | LargeBinary):  # Text, BigInteger too
        return Kind.PLAIN
    raise TypeError(f"no direct-statement codec for the column type {column_type!r}")


def kinds_of(table: Table, *columns: str) -> tuple[Kind, ...]:
    """The kinds of `columns` of `table` (a table of `persistence.models`), in order."""
    return tuple(kind_of(table.c[name].type) for name in columns)


class Codec:
    """One back end's conversions for one kind of column."""

    __slots__ = ("decode", "encode")

    def __init__(self, encode: Encoder | None = None, decode: Decoder | None = None) -> None:
        self.encode = encode
        self.decode = decode


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    return value.astimezone(UTC)


def _encode_timestamp(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _encode_sqlite_timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return _utc(value).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _decode_sqlite_timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _encode_sqlite_uuid(value: uuid.UUID | None) -> str | None:
    return None if value is None else value.hex


def _decode_sqlite_uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


def _encode_sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _decode_sqlite_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _decode_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


SQLITE: Mapping[Kind, Codec] = {
    Kind.PLAIN: Codec(),
    Kind.UUID: Codec(_encode_sqlite_uuid, _decode_sqlite_uuid),
    Kind.TIMESTAMP: Codec(_encode_sqlite_timestamp, _decode_sqlite_timestamp),
    Kind.JSON: Codec(json.dumps, _decode_json),
    Kind.BOOL: Codec(_encode_sqlite_bool, _decode_sqlite_bool),
}

# asyncpg takes and gives uuid, timestamptz (in UTC) and boolean values as Python's own, as
# SQLAlchemy's asyncpg dialect passes them; json travels as its text.
POSTGRES: Mapping[Kind, Codec] = {
    Kind.PLAIN: Codec(),
    Kind.UUID: Codec(),
    Kind.TIMESTAMP: Codec(_encode_timestamp),
    Kind.JSON: Codec(json.dumps, _decode_json),
    Kind.BOOL: Codec(),
}
