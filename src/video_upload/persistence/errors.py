"""What a database failure means to a client: wait and retry, or a bug to log.

Only failures of the connection itself (the server is down or restarting, the network dropped,
SQLite's file is locked past its busy timeout, the pool had no connection to lend in time) are
worth a retry, whether SQLAlchemy raised them or a driver the direct statements run on (asyncpg,
`sqlite3`, see `persistence.direct`): they become `ERR_DATABASE_UNAVAILABLE`, a 503 with
`Retry-After`. Every other database error (a constraint violated, a missing table or column, a
value the column refuses) will fail the same way on every retry, so it is left to propagate as a
logged 500: a client that retried it would retry forever.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from video_upload.domain.errors import ERR_DATABASE_UNAVAILABLE, ServiceError

log = logging.getLogger(__name__)


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached right now (worth a retry)."""
    if isinstance(error, PoolTimeoutError | OperationalError | InterfaceError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sqlite3.OperationalError) and is_sqlite_busy(error):
        return True
    if _is_asyncpg_connection_failure(error):
        return True
    # a driver's own connection failure (refused, reset), or no pooled connection in time
    return isinstance(error, ConnectionError | TimeoutError)


def is_sqlite_busy(error: sqlite3.Error) -> bool:
    """Whether `error` says another connection holds a lock (SQLITE_BUSY, any extended code:
    "database is locked")."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == sqlite3.SQLITE_BUSY
    return "database is locked" in str(error)


def _is_asyncpg_connection_failure(error: BaseException) -> bool:
    """asyncpg's errors for a connection that is lost, refused or being shut down: SQLSTATE
    class 08, the server shutting down or starting (57P01-57P03), too many connections, its own
    "connection is closed" (a bare InterfaceError; its subclasses mean a misuse), and its
    protocol out of step with the server (InternalClientError: "cannot switch to state", from a
    connection the server ended while it was idle)."""
    exceptions = sys.modules.get("asyncpg.exceptions")
    if exceptions is None:  # asyncpg never loaded (a SQLite service): not one of its errors
        return False
    connection_failures = (
        exceptions.PostgresConnectionError,
        exceptions.AdminShutdownError,
        exceptions.CrashShutdownError,
        exceptions.CannotConnectNowError,
        exceptions.TooManyConnectionsError,
        exceptions.InternalClientError,
    )
    return isinstance(error, connection_failures) or type(error) is exceptions.InterfaceError


def raise_if_unavailable(error: BaseException | None) -> None:
    """Raise the retryable 503 for a connection failure; leave every other error alone."""
    if error is None or isinstance(error, ServiceError) or not is_unavailable(error):
        return
    log.warning("database unavailable: %s", error)
    raise ServiceError(ERR_DATABASE_UNAVAILABLE) from error
