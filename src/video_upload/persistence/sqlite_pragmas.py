"""What every SQLite connection of the service is set up with (the main pool's, and the per-chunk
statements' of `persistence.sqlite_direct`)."""

from __future__ import annotations

# Run after `journal_mode=WAL`: commits that do not wait for the disk, foreign keys on, and deleted
# rows not overwritten with zeros where that costs writes (some builds, Debian's among them,
# zero every freed page: each staged piece of the S3 store would cross the WAL twice).
SQLITE_PRAGMAS = ("synchronous=NORMAL", "foreign_keys=ON", "secure_delete=FAST")

# How long a connection that may wait does wait for another's write lock (SQLite's busy
# timeout); then "database is locked", a retryable 503.
BUSY_TIMEOUT_SECONDS = 30
