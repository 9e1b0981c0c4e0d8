"""What every SQLite connection of the service is set up with (the main pool's, and the per-chunk
statements' of `persistence.sqlite_direct`)."""

from __future__ import annotations

# Run after `journal_mode=WAL`: commits that do not wait for the disk, foreign keys on.
SQLITE_PRAGMAS = ("synchronous=NORMAL", "foreign_keys=ON")

# How long a connection that may wait does wait for another's write lock (SQLite's busy
# timeout); then "database is locked", a retryable 503.
BUSY_TIMEOUT_SECONDS = 30
