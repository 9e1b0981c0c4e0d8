"""The S3 store's staged pieces kept in the metadata database (`S3_STAGING=database`; the store
side and the reasons are in `storage.s3_staging`): one row of `staged_pieces` per piece, by the
upload's object key and the piece's start offset.

The statements run on the per-chunk driver (`persistence.direct`), as the offset's commit does,
and each commits by itself. A piece is put before the offset that counts it is committed, on the
same database, so it is at least as durable as that offset: a crash of the database server that
takes back the piece's commit takes back the later offset's commit too (on PostgreSQL both
commit without waiting for the WAL flush, in order; on SQLite both go to the same WAL).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table

from video_upload.persistence.column_codecs import Kind, kinds_of
from video_upload.persistence.direct import ChunkDriver, Prepared, Statement, run_statement
from video_upload.persistence.models import StagedPieceRow

_pieces = cast(Table, StagedPieceRow.__table__)


def _kinds(*columns: str) -> tuple[Kind, ...]:
    """The codec kinds of `columns` of the staged_pieces table, in order."""
    return kinds_of(_pieces, *columns)


_KEY_AND_START = _kinds("object_key", "start")

# $1 object key, $2 start, $3 tag, $4 bytes: a piece put again at the same start replaces it
PUT = Statement(
    "INSERT INTO staged_pieces (object_key, start, tag, data) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (object_key, start) DO UPDATE SET tag = excluded.tag, data = excluded.data"
    " RETURNING start",
    parameters=_kinds("object_key", "start", "tag", "data"),
    returns=_kinds("start"),
)

GET = Statement(
    "SELECT data FROM staged_pieces WHERE object_key = $1 AND start = $2",
    parameters=_KEY_AND_START,
    returns=_kinds("data"),
)

DELETE = Statement(
    "DELETE FROM staged_pieces WHERE object_key = $1 AND start = $2 RETURNING start",
    parameters=_KEY_AND_START,
    returns=_kinds("start"),
)

DELETE_ALL = Statement(
    "DELETE FROM staged_pieces WHERE object_key = $1 RETURNING start",
    parameters=_kinds("object_key"),
    returns=_kinds("start"),
)


class DatabaseStaging:
    """The staging place of `storage.s3_staging.StagingArea`, on `driver`. A piece's tag is a
    random one per put."""

    def __init__(self, driver: ChunkDriver) -> None:
        self.driver = driver
        self._put = driver.prepare(PUT)
        self._get = driver.prepare(GET)
        self._delete = driver.prepare(DELETE)
        self._delete_all = driver.prepare(DELETE_ALL)

    async def put(self, object_key: str, offset: int, data: bytes | bytearray) -> str:
        tag = secrets.token_hex(8)
        await self._run(self._put, (object_key, offset, tag, data))
        return tag

    async def get(self, object_key: str, offset: int, size: int) -> bytes | None:
        rows = await self._run(self._get, (object_key, offset))
        if not rows or len(rows[0][0]) != size:
            return None
        return bytes(rows[0][0])

    async def delete(self, object_key: str, offsets: Sequence[int]) -> None:
        for offset in offsets:
            await self._run(self._delete, (object_key, offset))

    async def delete_all(self, object_key: str) -> None:
        await self._run(self._delete_all, (object_key,))

    async def _run(self, statement: Prepared, values: Sequence[Any]) -> list[list[Any]]:
        return await run_statement(self.driver, statement, values)
