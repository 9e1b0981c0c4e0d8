"""The per-chunk statements on SQLite: run on the event loop's thread when the write lock is free,
on a worker thread that waits its turn when it is not, never half applied, the WAL kept bounded.

These talk to a real SQLite file through the service's own driver (`SQLiteDriver`); a statement
on a small table of their own stands in for the lease and offset statements (same driver, same
code path), so each test can count exactly how often a statement was applied.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from video_upload.domain.errors import ERR_DATABASE_UNAVAILABLE, ServiceError
from video_upload.persistence.chunks import ChunkStatements
from video_upload.persistence.column_codecs import Kind
from video_upload.persistence.database import Database
from video_upload.persistence.direct import Statement, sqlite_file
from video_upload.persistence.engine import create_engine, migrate_async
from video_upload.persistence.errors import is_unavailable, raise_if_unavailable
from video_upload.persistence.sqlite_direct import SQLiteDriver
from video_upload.persistence.sqlite_inline import CHECKPOINT_BYTES

INCREMENT = Statement(
    "UPDATE counters SET value = value + $2 WHERE id = $1 RETURNING value",
    parameters=(Kind.PLAIN, Kind.PLAIN),
    returns=(Kind.PLAIN,),
)

MIB = 1024 * 1024

READ = Statement("SELECT value FROM counters WHERE id = $1", (Kind.PLAIN,), (Kind.PLAIN,))


def make_database(path: Path) -> str:
    """A WAL-mode SQLite file with one counter at 0; its URL."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE counters (id TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        connection.execute("INSERT INTO counters VALUES ('a', 0)")
    connection.close()
    return f"sqlite+aiosqlite:///{path}"


def counter_value(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (value,) = connection.execute("SELECT value FROM counters WHERE id = 'a'").fetchone()
    connection.close()
    return int(value)


class LockHolder:
    """Another writer (a cleanup, another process) holding the write lock until `release`."""

    def __init__(self, database: Path) -> None:
        self.connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.execute("UPDATE counters SET value = value + 10 WHERE id = 'a'")

    def release(self) -> None:
        self.connection.execute("COMMIT")
        self.connection.close()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "chunks.db"
    make_database(path)
    return path


@pytest.fixture
async def driver(database: Path) -> AsyncIterator[SQLiteDriver]:
    runner = SQLiteDriver(str(database))
    try:
        yield runner
    finally:
        await runner.close()


async def increment(driver: SQLiteDriver, step: int | None) -> list[list[object]]:
    return await driver.run(driver.prepare(INCREMENT), ("a", step))


async def test_a_chunk_statement_runs_while_the_pooled_connection_is_lent_out(
    driver: SQLiteDriver, database: Path
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.connect() as lent:  # the pool's only connection, busy reading
            await lent.exec_driver_sql("SELECT 1")
            rows = await increment(driver, 1)
    finally:
        await engine.dispose()
    assert rows == [[1]]
    assert counter_value(database) == 1


async def test_a_chunk_statement_runs_on_the_loops_thread_while_the_write_lock_is_free(
    driver: SQLiteDriver, database: Path
) -> None:
    running = asyncio.ensure_future(increment(driver, 1))
    await asyncio.sleep(0)  # one turn of the loop: done already, no other thread involved
    assert running.done()
    assert await running == [[1]]
    assert counter_value(database) == 1


async def test_a_chunk_statement_waits_for_a_write_lock_held_elsewhere_and_applies_once(
    driver: SQLiteDriver, database: Path
) -> None:
    other = LockHolder(database)
    try:
        running = asyncio.ensure_future(increment(driver, 1))
        await asyncio.sleep(0)  # one turn of the loop: the statement finds the lock taken
        assert not running.done()  # waiting on the worker thread, not on the loop's
        await asyncio.sleep(0.05)
        assert not running.done()
    finally:
        other.release()
    rows = await running
    assert rows == [[11]]  # after the other writer's change, applied exactly once
    assert counter_value(database) == 11


async def test_a_lock_held_past_the_busy_timeout_is_the_retryable_503(database: Path) -> None:
    driver = SQLiteDriver(str(database), busy_timeout=0.2)
    other = LockHolder(database)
    try:
        with pytest.raises(sqlite3.OperationalError) as raised:
            await increment(driver, 1)
        with pytest.raises(ServiceError) as unavailable:  # what `ChunkStatements` raises
            raise_if_unavailable(raised.value)
        assert unavailable.value.kind == ERR_DATABASE_UNAVAILABLE
    finally:
        other.release()
        await driver.close()
    assert counter_value(database) == 10  # the timed-out statement changed nothing


async def test_a_missing_table_is_not_the_retryable_503(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    driver = SQLiteDriver(str(empty))
    try:
        with pytest.raises(sqlite3.OperationalError, match="no such table") as raised:
            await ChunkStatements(driver).read("some-upload")
    finally:
        await driver.close()
    assert not is_unavailable(raised.value)


async def test_a_chunk_statement_leaves_the_write_lock_free_as_soon_as_it_returns(
    driver: SQLiteDriver, database: Path
) -> None:
    assert await increment(driver, 3) == [[3]]
    other = sqlite3.connect(database, isolation_level=None, timeout=0)  # no waiting at all
    try:
        other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the lock were held
        other.execute("UPDATE counters SET value = value + 10 WHERE id = 'a'")
        other.execute("COMMIT")
    finally:
        other.close()
    assert counter_value(database) == 13  # the chunk statement's change was committed


async def test_a_statement_that_waited_leaves_the_write_lock_free_too(
    driver: SQLiteDriver, database: Path
) -> None:
    other = LockHolder(database)
    running = asyncio.ensure_future(increment(driver, 1))
    await asyncio.sleep(0.05)
    other.release()
    assert await running == [[11]]
    third = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        third.execute("BEGIN IMMEDIATE")
        third.execute("COMMIT")
    finally:
        third.close()


async def test_a_read_does_not_wait_for_a_writer_and_sees_only_what_is_committed(
    driver: SQLiteDriver, database: Path
) -> None:
    await increment(driver, 5)
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE counters SET value = 99 WHERE id = 'a'")  # not committed
        running = asyncio.ensure_future(driver.run(driver.prepare(READ), ("a",)))
        await asyncio.sleep(0)
        assert running.done()  # on the loop's thread: readers never wait in WAL mode
        rows = await running
    finally:
        other.close()  # rolls the other writer back
    assert rows == [[5]]


async def test_a_failed_chunk_statement_is_the_drivers_error_and_the_next_one_runs(
    driver: SQLiteDriver, database: Path
) -> None:
    with pytest.raises(sqlite3.IntegrityError) as raised:
        await increment(driver, None)  # value = NULL: refused
    assert not is_unavailable(raised.value)  # a bug to log (500), not a retry
    assert await increment(driver, 2) == [[2]]
    assert counter_value(database) == 2


async def test_the_wal_stays_bounded_over_thousands_of_chunk_commits(
    driver: SQLiteDriver, database: Path
) -> None:
    statement = driver.prepare(INCREMENT)
    wal = database.with_name(database.name + "-wal")

    async def commits(count: int) -> None:
        for _ in range(count):
            await driver.run(statement, ("a", 1))
            checkpoint = driver.pending_checkpoint
            if checkpoint is not None:  # as between requests: let the checkpoint finish
                await checkpoint

    await commits(1_000)
    after_first_thousand = wal.stat().st_size
    await commits(5_000)
    assert wal.stat().st_size <= after_first_thousand  # reused from its start, not grown
    assert counter_value(database) == 6_000


async def test_the_wal_stays_bounded_while_hundreds_of_mib_of_staged_pieces_come_and_go(
    tmp_path: Path,
) -> None:
    path = tmp_path / "video-upload.db"
    await migrate_async(f"sqlite+aiosqlite:///{path}")
    database = Database.open(f"sqlite+aiosqlite:///{path}", 10)
    staging, driver = database.staging, database.staging.driver
    assert isinstance(driver, SQLiteDriver)
    wal = path.with_name(path.name + "-wal")
    piece = bytes(range(256)) * 4096  # 1 MiB
    try:
        for start in range(0, 300 * MIB, MIB):  # a 300 MiB upload in 1 MiB PATCHes
            await staging.put("uploads/k", start, piece)
            if start % (5 * MIB) == 4 * MIB:  # a part is full: its pieces are deleted
                await staging.delete("uploads/k", [start - n * MIB for n in range(5)])
            checkpoint = driver.pending_checkpoint
            if checkpoint is not None:  # as between requests: let the checkpoint finish
                await checkpoint
            # what a checkpoint interval holds, plus the overhead of pages, WAL frames and the
            # deletes: not the 300 MiB that went through
            assert wal.stat().st_size < 1.25 * CHECKPOINT_BYTES
        assert await staging.get("uploads/k", 295 * MIB, MIB) is None
    finally:
        await database.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:////srv/data/video-upload.db", "/srv/data/video-upload.db"),
        ("sqlite+aiosqlite:///data/video-upload.db", "data/video-upload.db"),
        ("sqlite+aiosqlite://", None),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite:///file:shared?mode=memory&cache=shared&uri=true", None),
        ("postgresql+asyncpg://user@localhost/db", None),
    ],
)
def test_only_a_sqlite_database_file_gets_statements_on_the_loops_thread(
    url: str, expected: str | None
) -> None:
    assert sqlite_file(make_url(url)) == expected
