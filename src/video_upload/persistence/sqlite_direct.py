"""The direct statements on SQLite, with the stdlib `sqlite3` only.

A statement first runs on the event loop's own thread (`sqlite_inline.InlineSQLite`), which
never waits: when another connection (the pool's, another process's) holds the write lock, it
changes nothing and says so, and the statement goes to a worker thread of its own instead, whose
connection waits its turn (SQLite's busy timeout, 30 s as the pool's). One thread and one
connection: the statements that cannot run inline queue there, not in SQLite's busy handler.

The inline connection never checkpoints the WAL (a checkpoint flushes to the disk); every
`CHECKPOINT_EVERY` inline commits a passive checkpoint runs on the worker thread, so the WAL is
reused from its start instead of growing without bound.

A database named by a URI (`file:...?uri=true`, whose options a plain file name would not keep)
is left to the main engine's connection: there the statements run on it (`EngineDriver`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from video_upload.persistence.column_codecs import SQLITE
from video_upload.persistence.direct import Prepared, Statement, prepare_for_sqlite
from video_upload.persistence.errors import is_sqlite_busy
from video_upload.persistence.sqlite_inline import CHECKPOINT_EVERY, InlineSQLite
from video_upload.persistence.sqlite_pragmas import BUSY_TIMEOUT_SECONDS, SQLITE_PRAGMAS

log = logging.getLogger(__name__)


class SQLiteWorker:
    """One `sqlite3` connection, used only on one worker thread of its own, that waits up to
    `busy_timeout` seconds for the write lock. Each statement is a transaction of its own."""

    def __init__(self, database: str, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.database = database
        self.busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None  # only ever touched on the thread

    async def run(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        """The statement's rows, committed, once the lock was free for it."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-chunks")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, sql, parameters)

    async def close(self) -> None:
        """Close the connection (after what is queued), and let the thread end."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._close)
            executor.shutdown(wait=False)

    def _run(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        connection = self._connection or self._open()
        try:
            # autocommit: stepped to its end, the statement has committed
            return connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            if not is_sqlite_busy(error):
                self._close()  # not trusted again: the next statement opens a new connection
            raise

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.database, timeout=self.busy_timeout, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            for pragma in SQLITE_PRAGMAS:
                connection.execute(f"PRAGMA {pragma}")
        except sqlite3.Error:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()


class SQLiteDriver:
    """The direct statements on a SQLite database file (see the module's docstring)."""

    def __init__(
        self,
        database: str,
        *,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self.inline = InlineSQLite(database, checkpoint_every=checkpoint_every)
        self.worker = SQLiteWorker(database, busy_timeout=busy_timeout)
        self._checkpoint: asyncio.Task[None] | None = None

    def prepare(self, statement: Statement) -> Prepared:
        return prepare_for_sqlite(statement, SQLITE)

    async def run(
        self, statement: Prepared, values: Sequence[Any], *, durable: bool = False
    ) -> list[list[Any]]:
        """Inline when the write lock is free, else on the worker thread. (`durable` changes
        nothing: every connection of the service commits with `synchronous=NORMAL`.)"""
        parameters = statement.encode(values)
        rows = self.inline.run(statement.sql, parameters)
        if rows is None:
            rows = await self.worker.run(statement.sql, parameters)
        elif self.inline.checkpoint_due() and self.pending_checkpoint is None:
            self._checkpoint = asyncio.get_running_loop().create_task(self._run_checkpoint())
        return [statement.decode(row) for row in rows]

    @property
    def pending_checkpoint(self) -> asyncio.Task[None] | None:
        """The WAL checkpoint running in the background, if one is."""
        task = self._checkpoint
        return task if task is not None and not task.done() else None

    async def close(self) -> None:
        """Wait for a running checkpoint, then close both connections."""
        if self._checkpoint is not None:
            await self._checkpoint
        self.inline.close()
        await self.worker.close()

    async def _run_checkpoint(self) -> None:
        """A passive checkpoint on the worker thread: the WAL's pages go into the database file
        there (flushing it), never on the event loop's thread."""
        try:
            await self.worker.run("PRAGMA wal_checkpoint(PASSIVE)", ())
        except Exception as error:  # the next one retries; the WAL only grows meanwhile
            log.warning("WAL checkpoint failed: %s", error)


class EngineDriver:
    """The direct statements on the main engine's pooled connection, through SQLAlchemy Core's
    `exec_driver_sql` (the SQL and parameters go to the driver as they are): for a SQLite
    database named by a URI."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def prepare(self, statement: Statement) -> Prepared:
        return prepare_for_sqlite(statement, SQLITE)

    async def run(
        self, statement: Prepared, values: Sequence[Any], *, durable: bool = False
    ) -> list[list[Any]]:
        parameters = tuple(statement.encode(values))
        async with self.engine.begin() as connection:
            result = await connection.exec_driver_sql(statement.sql, parameters)
            rows = result.all()
        return [statement.decode(row) for row in rows]

    async def close(self) -> None:
        """Nothing of its own: the engine is closed with the database."""
