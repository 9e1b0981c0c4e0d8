"""The direct statements on PostgreSQL: an asyncpg pool of their own.

The pool opens connections as statements need them, up to the per-chunk share of the process's
connection budget (`engine.pool_limits`), and closes those idle for five minutes. Its
connections commit without waiting for the WAL flush (`synchronous_commit=off`, sent when
connecting): a crash of the database server can take back the last fraction of a second of
lease and offset updates, and a client then re-sends what the upload's offset no longer counts,
as after a crash of the local store's machine. The one statement that must not be taken back,
sealing a completed upload, runs `durable`: in a transaction that sets `synchronous_commit` back
on for its commit.

A statement outside a transaction commits by itself, so a statement is one round trip (asyncpg
prepares it once per connection). Handing a connection back runs nothing either: asyncpg still
rolls back a transaction left open (a durable statement cancelled half-way), and these
statements change nothing else in the session, so the default reset (`RESET ALL`, `UNLISTEN *`
and more: a second round trip per statement) is skipped. A connection that died with a restart
of the server is replaced before use when asyncpg has seen it close; otherwise its statement
fails (a retryable 503, see `persistence.errors`) and the connection is dropped for a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from video_upload.persistence.column_codecs import POSTGRES
from video_upload.persistence.direct import Prepared, Statement, prepare_for_postgres
from video_upload.persistence.errors import is_unavailable

# How long a statement waits for a connection of the pool when all are in use (then a retryable
# 503), as the main pool's (SQLAlchemy's default `pool_timeout`).
ACQUIRE_TIMEOUT_SECONDS = 30.0

# The per-chunk statements' session: commits that do not wait for the WAL flush.
SERVER_SETTINGS = {"synchronous_commit": "off"}

# Query options of a SQLAlchemy URL that are SQLAlchemy's own, not asyncpg's.
_SQLALCHEMY_OPTIONS = ("prepared_statement_cache_size", "prepared_statement_name_func")


def connect_arguments(url: URL) -> dict[str, Any]:
    """asyncpg's connect arguments for a `postgresql+asyncpg://` URL, as SQLAlchemy's asyncpg
    dialect derives them (host, port, user, password, database, then the URL's query options)."""
    arguments: dict[str, Any] = url.translate_connect_args(username="user")
    arguments.update(
        (name, value) for name, value in url.query.items() if name not in _SQLALCHEMY_OPTIONS
    )
    return arguments


async def _nothing_to_reset(connection: Any) -> None:
    """A connection goes back to the pool as it is (see the module's docstring)."""


class PostgresDriver:
    """The direct statements on an asyncpg pool of at most `max_size` connections."""

    def __init__(
        self,
        connect_args: Mapping[str, Any],
        max_size: int,
        *,
        server_settings: Mapping[str, str] = SERVER_SETTINGS,
        acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS,
    ) -> None:
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self._connect_args = {**connect_args, "server_settings": dict(server_settings)}
        self._pool: Any = None  # asyncpg.Pool, created with the first statement
        self._creating = asyncio.Lock()

    @classmethod
    def for_url(cls, url: URL, max_size: int) -> PostgresDriver:
        return cls(connect_arguments(url), max_size)

    def prepare(self, statement: Statement) -> Prepared:
        return prepare_for_postgres(statement, POSTGRES)

    async def run(
        self, statement: Prepared, values: Sequence[Any], *, durable: bool = False
    ) -> list[list[Any]]:
        parameters = statement.encode(values)
        pool = self._pool or await self._create_pool()
        try:
            connection = await pool.acquire(timeout=self.acquire_timeout)
        except TimeoutError:
            raise  # every connection stayed in use: `errors.is_unavailable` knows it
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # refused, unreachable, not accepting connections (yet), the pool closing: no
            # connection to be had now, which a retry may well find
            raise ConnectionError(f"cannot connect to PostgreSQL: {error}") from error
        try:
            if durable:
                async with connection.transaction():
                    await connection.execute("SET LOCAL synchronous_commit TO on")
                    rows = await connection.fetch(statement.sql, *parameters)
            else:
                rows = await connection.fetch(statement.sql, *parameters)
        except Exception as error:
            if is_unavailable(error) or connection.is_closed():
                # lost, or out of step with the server (it died while idle, and the news is
                # still on its way): never lent again, the pool opens a new one in its place
                connection.terminate()
                if not is_unavailable(error):
                    raise ConnectionError(f"PostgreSQL connection lost: {error!r}") from error
            raise
        finally:
            await pool.release(connection)
        return [statement.decode(row) for row in rows]

    async def close(self) -> None:
        """Close the pool's connections (waiting for those lent out to come back)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _create_pool(self) -> Any:
        async with self._creating:
            if self._pool is None:
                # min_size=0: connects nothing now (so this cannot fail for want of a server)
                self._pool = await asyncpg.create_pool(
                    min_size=0,
                    max_size=self.max_size,
                    reset=_nothing_to_reset,
                    **self._connect_args,
                )
        return self._pool
