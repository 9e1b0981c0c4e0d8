"""Statements compiled once and run straight on the database driver, for the per-chunk path.

Every PATCH runs two statements: take the upload's writer lease (returning its row) and commit
the new offset (which gives the lease back). Through an ORM session each cost about half a
millisecond of CPU: the session and its transaction bookkeeping, the compiled-cache lookup,
ORM result processing and a dozen greenlet switches, several times what running the statement
costs. So these two skip SQLAlchemy's execution layer, and only that:

- the SQL is still written with SQLAlchemy and compiled by it, once, for the engine's dialect;
- parameters and returned values still go through the column types' own bind and result
  processors (timestamps, JSON, UUIDs, booleans come out exactly as the ORM would give them);
- the connection still comes from, and goes back to, the engine's pool.

What is left is running one statement as its own transaction on the driver connection: one round
trip with asyncpg (a statement outside a transaction commits by itself); on SQLite, a call on the
event loop's own thread (`sqlite_inline`), or, when another connection holds the write lock, one
trip to the pooled connection's worker thread (`sqlite_driver.Connection.run_alone`), which waits
its turn. Every change here has a RETURNING clause, so its rows also say how many rows it
changed. A SELECT takes no lock on SQLite (WAL readers never wait) and is not a transaction.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util import greenlet_spawn

from video_upload.persistence import sqlite_driver
from video_upload.persistence.sqlite_inline import InlineSQLite

log = logging.getLogger(__name__)
Processor = Callable[[Any], Any] | None
Statement = UpdateBase | Select[Any]  # an INSERT/UPDATE/DELETE ... RETURNING, or a SELECT


class DirectStatement:
    """An INSERT/UPDATE/DELETE ... RETURNING, or a SELECT, compiled for one dialect."""

    def __init__(
        self, statement: Statement, returning: Sequence[Column[Any]], dialect: Dialect
    ) -> None:
        compiled = statement.compile(dialect=dialect)
        if not compiled.positiontup:
            raise ValueError("direct statements need a dialect with positional parameters")
        self.sql = compiled.string
        self._dialect = dialect
        # Each positional parameter is either supplied per call (a bare `bindparam(name)`) or a
        # literal the statement was built with (`status != "expired"`): literals are converted
        # once, here, so a call only converts what it supplies.
        self._template: list[Any] = []
        self._supplied: list[tuple[int, str, Processor]] = []
        for position, name in enumerate(compiled.positiontup):
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required:
                self._template.append(None)
                self._supplied.append((position, name, processor))
            else:
                self._template.append(_bind(processor, bind.effective_value))
        self._returning = list(returning)
        self._keys = [column.key for column in returning]
        self._converted: list[tuple[int, str, Callable[[Any], Any]]] | None = None  # see resolve

    @property
    def columns_returned(self) -> int:
        return len(self._keys)

    @property
    def resolved(self) -> bool:
        return self._converted is not None

    def resolve(self, type_codes: Sequence[Any]) -> None:
        """Pick each returned column's result processor, given the driver's type codes (some
        drivers' processors depend on them; SQLite has none). Columns without one are
        returned as the driver gives them."""
        self._converted = []
        for position, (column, code) in enumerate(zip(self._returning, type_codes, strict=True)):
            processor = column.type.dialect_impl(self._dialect).result_processor(
                self._dialect, code
            )
            if processor is not None:
                self._converted.append((position, column.key, processor))

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        """The statement's positional parameters: `values`, plus the literals it was built with.
        A value missing from `values` is an error, as it is for SQLAlchemy."""
        out = self._template.copy()
        for position, name, processor in self._supplied:
            value = values[name]  # `_bind`, inline: this runs for every parameter of a PATCH
            if processor is not None and value is not None:
                value = processor(value)
            out[position] = value
        return out

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        assert self._converted is not None, "resolve() first"
        converted = dict(zip(self._keys, raw, strict=True))
        for position, key, processor in self._converted:
            converted[key] = processor(raw[position])
        return converted


def _bind(processor: Processor, value: Any) -> Any:
    """A parameter as the driver takes it (None is passed as it is)."""
    return processor(value) if processor is not None and value is not None else value


class DirectExecutor:
    """Runs `DirectStatement`s on connections from the engine's pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        database = sqlite_file(engine.url)
        self.inline = InlineSQLite(database) if database is not None else None
        self._checkpoint: asyncio.Task[None] | None = None

    def prepare(self, statement: Statement, returning: Sequence[Column[Any]]) -> DirectStatement:
        return DirectStatement(statement, returning, self.dialect)

    async def run(
        self, statement: DirectStatement, values: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Run `statement` as a transaction of its own; the returned rows, converted."""
        parameters = statement.parameters(values)
        if self.inline is not None:
            rows = self._run_inline(self.inline, statement, parameters)
            if rows is not None:
                return rows
        return await self._run_pooled(statement, parameters)

    def _run_inline(
        self, inline: InlineSQLite, statement: DirectStatement, parameters: list[Any]
    ) -> list[dict[str, Any]] | None:
        """On the loop's thread; None when the write lock is taken (nothing was run)."""
        try:
            raw = inline.run(statement.sql, parameters)
        except sqlite3.Error as error:
            raise _dbapi_error(statement.sql, error, sqlite3.Error) from error
        if raw is None:
            return None
        if not statement.resolved:
            statement.resolve([None] * statement.columns_returned)
        if inline.checkpoint_due() and (self._checkpoint is None or self._checkpoint.done()):
            self._checkpoint = asyncio.get_running_loop().create_task(self._run_checkpoint())
        return [statement.row(row) for row in raw]

    async def _run_checkpoint(self) -> None:
        """A passive checkpoint on the pooled connection's worker thread: the WAL's pages go
        into the database file there (flushing it), never on the event loop's thread."""
        try:
            async with self.engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as error:  # the next one retries; the WAL only grows meanwhile
            log.warning("WAL checkpoint failed: %s", error)

    @property
    def pending_checkpoint(self) -> asyncio.Task[None] | None:
        """The WAL checkpoint running in the background, if one is."""
        task = self._checkpoint
        return task if task is not None and not task.done() else None

    async def close(self) -> None:
        """Wait for a running checkpoint and close the inline connection (if any)."""
        if self._checkpoint is not None:
            await self._checkpoint
        if self.inline is not None:
            self.inline.close()

    async def _run_pooled(
        self, statement: DirectStatement, parameters: list[Any]
    ) -> list[dict[str, Any]]:
        """On a connection from the engine's pool (the only way for PostgreSQL)."""
        try:
            pooled = await self.engine.raw_connection()
        except SQLAlchemyError:
            raise  # e.g. the pool's timeout
        except Exception as error:  # the driver could not connect
            raise DBAPIError(statement.sql, None, error) from error
        try:
            driver = pooled.driver_connection
            try:
                if not statement.resolved:
                    statement.resolve(await _type_codes(driver, statement))
                if isinstance(driver, sqlite_driver.Connection):
                    rows: Sequence[Sequence[Any]] = await driver.run_alone(
                        statement.sql, parameters
                    )
                else:  # asyncpg: outside a transaction, a statement commits by itself
                    rows = await driver.fetch(statement.sql, *parameters)  # type: ignore[union-attr]
            except Exception as error:
                raise _as_dbapi_error(error, statement.sql, pooled, self.dialect) from error
        finally:
            # back to the pool (its reset may await the driver, hence the greenlet), even when
            # the request is cancelled meanwhile
            await asyncio.shield(greenlet_spawn(pooled.close))
        return [statement.row(raw) for raw in rows]


def sqlite_file(url: URL) -> str | None:
    """The database file of a SQLite URL, or None (another database, an in-memory one, or a
    URI whose meaning a plain file name would not keep)."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


async def _type_codes(driver: Any, statement: DirectStatement) -> list[Any]:
    """What the driver reports as the type of each returned column (once per statement)."""
    if isinstance(driver, sqlite_driver.Connection):
        return [None] * statement.columns_returned
    prepared = await driver.prepare(statement.sql)  # asyncpg: type OIDs, as SQLAlchemy uses
    return [attribute.type.oid for attribute in prepared.get_attributes()]


def _as_dbapi_error(error: Exception, sql: str, pooled: Any, dialect: Dialect) -> DBAPIError:
    """The driver's error in SQLAlchemy's DB-API form (as if SQLAlchemy had run the statement),
    with the connection invalidated when the error means it is gone."""
    adapter = pooled.dbapi_connection
    try:
        adapter._handle_exception(error)  # raises the driver's error translated to the DB-API
    except Exception as translated:  # whatever the translation raised
        error = translated
    disconnect = dialect.is_disconnect(error, adapter, None)  # type: ignore[arg-type]
    if disconnect:
        pooled.invalidate(error)
    return _dbapi_error(sql, error, dialect.loaded_dbapi.Error, invalidated=disconnect)


def _dbapi_error(
    sql: str, error: Exception, base: type[Exception], *, invalidated: bool = False
) -> DBAPIError:
    """`error` wrapped as SQLAlchemy wraps a driver's errors (OperationalError and so on)."""
    wrapped = DBAPIError.instance(sql, None, error, base, connection_invalidated=invalidated)
    return wrapped if isinstance(wrapped, DBAPIError) else DBAPIError(sql, None, error)
