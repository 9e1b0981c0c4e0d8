"""What a database failure means to a client: wait and retry, or a bug to log.

Only failures of the connection itself (the server is down or restarting, the network dropped,
SQLite's file is locked past its busy timeout, the pool had no connection to lend in time) are
worth a retry: they become `ERR_DATABASE_UNAVAILABLE`, a 503 with `Retry-After`. Every other
database error (a constraint violated, a missing table or column, a value the column refuses)
will fail the same way on every retry, so it is left to propagate as a logged 500: a client that
retried it would retry forever.
"""

from __future__ import annotations

import logging

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
    # a driver's own connection failure before SQLAlchemy could wrap it (refused, reset)
    return isinstance(error, ConnectionError | TimeoutError)


def raise_if_unavailable(error: BaseException | None) -> None:
    """Raise the retryable 503 for a connection failure; leave every other error alone."""
    if error is None or isinstance(error, ServiceError) or not is_unavailable(error):
        return
    log.warning("database unavailable: %s", error)
    raise ServiceError(ERR_DATABASE_UNAVAILABLE) from error
