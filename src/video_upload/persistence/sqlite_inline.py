"""The per-chunk statements on SQLite, run on the event loop's own thread when they cannot wait.

Every PATCH runs two short statements (take the writer lease, commit the offset). Through
aiosqlite each is a trip to the connection's worker thread: a queue, two thread wake-ups and the
event loop's self-pipe, about 70 µs of CPU around a statement that itself takes about 15 µs
(measured on the benchmark machine; see the README's performance section). Run here, on the loop's
thread, the statement costs only itself, and it cannot hold the loop up for long, because:

- it never waits for a lock: the connection's busy timeout is 0 and it is in autocommit mode,
  so each statement is a transaction of its own that takes the write lock when it writes, and
  when another connection (the pool's, another process's) holds that lock the statement fails
  at once with SQLITE_BUSY, having changed nothing: `run` returns None, and the caller runs
  it on a connection that waits its turn (`sqlite_direct`; no BEGIN and COMMIT around each
  statement: two steps of SQLite's fewer per statement, about 30,000 instructions a PATCH);
- it never waits for the disk: in WAL mode with `synchronous=NORMAL`, a commit appends to the
  WAL in the page cache. SQLite's automatic checkpoint (which does flush) is off on this
  connection; `checkpoint_due` tells the caller when to run a passive one elsewhere, so the WAL
  does not grow without bound.

A connection whose statement failed for any other reason than the lock is closed; the next call
opens a new one. When the database cannot be in WAL mode, nothing runs here at all.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any

from video_upload.persistence.errors import is_sqlite_busy
from video_upload.persistence.sqlite_pragmas import SQLITE_PRAGMAS

# Commits between the passive checkpoints the caller runs (SQLite's own default is one per 1,000
# WAL pages; a chunk commit writes a few pages)...
CHECKPOINT_EVERY = 500
# ... or bytes of BLOB parameters committed (the S3 store's staged pieces, up to a part each),
# whichever comes first, so that the WAL file stays near this size whatever the pieces weigh.
# (Cutting the file back after each checkpoint, `journal_size_limit`, cost a third more CPU per
# staged byte: the file is grown again at once.)
CHECKPOINT_BYTES = 128 * 1024 * 1024

# The service's own, then no automatic checkpoint (see above).
PRAGMAS = (*SQLITE_PRAGMAS, "wal_autocheckpoint=0")


class InlineSQLite:
    """One synchronous connection to the database file, used only by the event loop's thread."""

    def __init__(
        self,
        database: str,
        *,
        checkpoint_every: int = CHECKPOINT_EVERY,
        checkpoint_bytes: int = CHECKPOINT_BYTES,
    ) -> None:
        self.database = database
        self.checkpoint_every = checkpoint_every
        self.checkpoint_bytes = checkpoint_bytes
        self.usable = True  # False once the database turned out not to be in WAL mode
        self._connection: sqlite3.Connection | None = None
        self._commits = 0
        self._blob_bytes = 0

    def run(self, sql: str, parameters: Sequence[Any]) -> list[Any] | None:
        """Run one statement as its own transaction: its rows, committed. None when another
        connection holds the write lock (or WAL mode is unavailable): then nothing was run."""
        connection = self._connection or self._open()
        if connection is None:
            return None
        try:
            # stepped to its end, the statement has committed (autocommit mode)
            rows = connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            if is_sqlite_busy(error):
                return None
            self.close()  # not trusted again: the next call opens a new connection
            raise
        if not sql.startswith("SELECT"):
            self._commits += 1
            self._blob_bytes += sum(len(p) for p in parameters if isinstance(p, bytes | bytearray))
        return rows

    def checkpoint_due(self) -> bool:
        """True once every `checkpoint_every` commits or `checkpoint_bytes` of BLOBs committed
        (then counting starts again)."""
        if self._commits < self.checkpoint_every and self._blob_bytes < self.checkpoint_bytes:
            return False
        self._commits = self._blob_bytes = 0
        return True

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()

    def _open(self) -> sqlite3.Connection | None:
        if not self.usable:
            return None
        connection = sqlite3.connect(self.database, timeout=0, isolation_level=None)
        try:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                self.usable = False  # a commit would wait for the disk: never run here
                connection.close()
                return None
            for pragma in PRAGMAS:
                connection.execute(f"PRAGMA {pragma}")
        except sqlite3.Error as error:
            connection.close()
            if is_sqlite_busy(error):
                return None
            raise
        self._connection = connection
        return connection
