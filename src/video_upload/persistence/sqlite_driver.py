"""aiosqlite with one trip to its worker thread per statement instead of four to six.

SQLAlchemy's aiosqlite dialect goes to the connection's worker thread for every DB-API call:
create a cursor, execute, fetch the rows, close the cursor, commit, and roll back when the
connection returns to the pool. Each trip costs tens of microseconds of thread wake-ups, and the
two statements an upload chunk needs made eleven of them, more than the statements themselves.

This connection keeps the worker thread for what may block or wait on a lock (running a
statement, with its rows fetched in the same trip, and ending an open transaction) and does the
rest inline, since it touches only memory: creating and closing a cursor, handing out rows
already fetched, and skipping a commit or rollback when no transaction is open.

Inline calls are safe because SQLAlchemy's pool lends a connection to one task at a time and
every trip to the worker thread is awaited before the next call is made, so the sqlite3
connection is never used by two threads at once (hence `check_same_thread=False`).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager

Row = Any


class Cursor(aiosqlite.Cursor):
    """Executes and fetches in one trip; rows are then handed out without one."""

    def __init__(self, conn: aiosqlite.Connection, cursor: sqlite3.Cursor) -> None:
        super().__init__(conn, cursor)
        self._rows: deque[Row] = deque()

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Cursor:
        run = self._execute  # aiosqlite leaves this untyped
        rows = await run(_execute_and_fetch, self._cursor, sql, parameters or ())  # type: ignore[no-untyped-call]
        self._rows = deque(rows)
        return self

    async def fetchone(self) -> Row | None:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        count = min(size or self.arraysize, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    async def fetchall(self) -> list[Row]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()
        self._cursor.close()


class Connection(aiosqlite.Connection):
    @contextmanager
    async def cursor(self) -> aiosqlite.Cursor:
        return Cursor(self, self._conn.cursor())

    async def run_alone(self, sql: str, parameters: Sequence[Any]) -> list[Row]:
        """Run one statement as a transaction of its own, in one trip: its rows, committed."""
        run = self._execute  # aiosqlite leaves this untyped
        rows: list[Row] = await run(_run_alone, self._conn, sql, parameters)  # type: ignore[no-untyped-call]
        return rows

    async def commit(self) -> None:
        if self._conn.in_transaction:
            await self._execute(self._conn.commit)  # type: ignore[no-untyped-call]

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            await self._execute(self._conn.rollback)  # type: ignore[no-untyped-call]


def _execute_and_fetch(cursor: sqlite3.Cursor, sql: str, parameters: Iterable[Any]) -> list[Row]:
    cursor.execute(sql, parameters)  # type: ignore[arg-type]
    return cursor.fetchall() if cursor.description is not None else []


def _run_alone(connection: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> list[Row]:
    if connection.in_transaction:
        raise sqlite3.ProgrammingError("run_alone inside an open transaction")
    cursor = connection.cursor()
    try:
        rows = _execute_and_fetch(cursor, sql, parameters)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    return rows


def connect(database: str | Path, **kwargs: Any) -> Connection:
    """Like `aiosqlite.connect`; SQLAlchemy calls it through `async_creator_fn`."""
    kwargs["check_same_thread"] = False

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(database, **kwargs)
        return connection

    connection = Connection(connector, iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite: never block exit
    return connection
