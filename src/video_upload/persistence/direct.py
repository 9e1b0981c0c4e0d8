"""Statements run straight on a database driver, for the per-chunk path: the one small interface
between `persistence.chunks` and the drivers.

Every PATCH runs two statements: take the upload's writer lease (returning its row) and commit
the new offset (which gives the lease back). Through an ORM session each cost about half a
millisecond of CPU: the session and its transaction bookkeeping, the compiled-cache lookup,
ORM result processing and a dozen greenlet switches, several times what running the statement
costs. So these few are written by hand as SQL and run on a driver's public API:

- PostgreSQL: a small asyncpg pool of their own (`persistence.postgres_direct`);
- SQLite: the stdlib `sqlite3`, on the event loop's own thread while the write lock is free,
  else on a worker thread that waits its turn (`persistence.sqlite_direct`).

A `Statement` is written once, in PostgreSQL's form (`$1`, `$2`, ... placeholders; SQLite reads
them as `?1`, `?2`, ...), with the kind of each parameter and of each returned column; a driver
`prepare`s it with its back end's codecs (`persistence.column_codecs`), so values go in and come
out exactly as the ORM's column types would store and read them. Each statement runs as a
transaction of its own. Every change has a RETURNING clause, so its rows also say how many rows
it changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import URL

from video_upload.persistence.column_codecs import Codec, Decoder, Encoder, Kind
from video_upload.persistence.errors import raise_if_unavailable


@dataclass(frozen=True)
class Statement:
    """One statement as written (PostgreSQL's `$n` placeholders, no `$` anywhere else), the
    kind of each parameter `$1`, `$2`, ... in order, and of each column it returns."""

    sql: str
    parameters: tuple[Kind, ...]
    returns: tuple[Kind, ...] = ()


class Prepared:
    """A `Statement` ready for one back end: its SQL in the driver's placeholders, and the
    conversions of its parameters and returned values."""

    __slots__ = ("_decoders", "_encoders", "sql")

    def __init__(self, statement: Statement, codecs: Mapping[Kind, Codec], sql: str) -> None:
        self.sql = sql
        self._encoders: list[tuple[int, Encoder]] = [
            (position, encode)
            for position, kind in enumerate(statement.parameters)
            if (encode := codecs[kind].encode) is not None
        ]
        self._decoders: list[tuple[int, Decoder]] = [
            (position, decode)
            for position, kind in enumerate(statement.returns)
            if (decode := codecs[kind].decode) is not None
        ]

    def encode(self, values: Sequence[Any]) -> list[Any]:
        """The parameters as the driver takes them."""
        encoded = list(values)
        for position, encode in self._encoders:
            encoded[position] = encode(encoded[position])
        return encoded

    def decode(self, raw: Sequence[Any]) -> list[Any]:
        """A returned row as the ORM would read it."""
        row = list(raw)
        for position, decode in self._decoders:
            row[position] = decode(row[position])
        return row


def prepare_for_postgres(statement: Statement, codecs: Mapping[Kind, Codec]) -> Prepared:
    return Prepared(statement, codecs, statement.sql)


_DOLLAR_PLACEHOLDER = re.compile(r"\$(\d+)")


def prepare_for_sqlite(statement: Statement, codecs: Mapping[Kind, Codec]) -> Prepared:
    """SQLite's numbered placeholders are `?1`, `?2`, ... (bound by position, as `$n` are)."""
    return Prepared(statement, codecs, _DOLLAR_PLACEHOLDER.sub(r"?\1", statement.sql))


class ChunkDriver(Protocol):
    """Where the direct statements run."""

    def prepare(self, statement: Statement) -> Prepared:
        """`statement` with this back end's placeholders and codecs."""
        ...

    async def run(
        self, statement: Prepared, values: Sequence[Any], *, durable: bool = False
    ) -> list[list[Any]]:
        """Run `statement` as a transaction of its own: its rows, converted. With `durable`, its
        commit waits for the disk even where the driver's others do not (PostgreSQL). Connection
        failures raise what `persistence.errors.is_unavailable` recognises; everything else
        (a constraint, a missing table) raises the driver's own error."""
        ...

    async def close(self) -> None:
        """Release the driver's connections (after waiting for its background work)."""
        ...


async def run_statement(
    driver: ChunkDriver, statement: Prepared, values: Sequence[Any], *, durable: bool = False
) -> list[list[Any]]:
    """Run `statement` on `driver`; a connection failure becomes the retryable 503."""
    try:
        return await driver.run(statement, values, durable=durable)
    except Exception as error:
        raise_if_unavailable(error)
        raise


def sqlite_file(url: URL) -> str | None:
    """The database file of a SQLite URL, or None (another database, an in-memory one, or a
    URI whose meaning a plain file name would not keep)."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database
