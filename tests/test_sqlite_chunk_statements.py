"""The per-chunk statements on SQLite: run on the event loop's thread when the write lock is free,
through the pool (waiting their turn) when it is not, never half applied, the WAL kept bounded.

These talk to a real SQLite file through the service's own engine and executor; a statement on a
small table of their own stands in for the lease and offset statements (same executor, same code
path), so each test can count exactly how often a statement was applied.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from video_upload.persistence.direct import DirectExecutor, DirectStatement, sqlite_file
from video_upload.persistence.engine import create_engine

counters = Table(
    "counters",
    MetaData(),
    Column("id", String, primary_key=True),
    Column("value", Integer, nullable=False),
)
INCREMENT = (
    update(counters)
    .where(counters.c.id == bindparam("target"))
    .values(value=counters.c.value + bindparam("step"))
    .returning(counters.c.value)
)

READ = select(counters.c.value).where(counters.c.id == bindparam("target"))


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


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "chunks.db"
    make_database(path)
    return path


@pytest.fixture
async def executor(database: Path) -> AsyncIterator[DirectExecutor]:
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    runner = DirectExecutor(engine)
    try:
        yield runner
    finally:
        await runner.close()
        await engine.dispose()


def increment(executor: DirectExecutor) -> DirectStatement:
    return executor.prepare(INCREMENT, [counters.c.value])


async def test_a_chunk_statement_runs_while_the_pooled_connection_is_lent_out(
    executor: DirectExecutor, database: Path
) -> None:
    statement = increment(executor)
    async with executor.engine.connect() as lent:  # the pool's only connection, busy reading
        await lent.exec_driver_sql("SELECT 1")
        rows = await executor.run(statement, {"target": "a", "step": 1})
    assert rows == [{"value": 1}]
    assert counter_value(database) == 1


async def test_a_chunk_statement_waits_for_a_write_lock_held_elsewhere_and_applies_once(
    executor: DirectExecutor, database: Path
) -> None:
    statement = increment(executor)
    other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer: a cleanup, another process
        other.execute("UPDATE counters SET value = value + 10 WHERE id = 'a'")
        running = asyncio.ensure_future(executor.run(statement, {"target": "a", "step": 1}))
        await asyncio.sleep(0)  # one turn of the loop: the statement finds the lock taken
        assert not running.done()
        other.execute("COMMIT")
        rows = await running
    finally:
        other.close()
    assert rows == [{"value": 11}]  # after the other writer's change, applied exactly once
    assert counter_value(database) == 11


async def test_a_chunk_statement_leaves_the_write_lock_free_as_soon_as_it_returns(
    executor: DirectExecutor, database: Path
) -> None:
    rows = await executor.run(increment(executor), {"target": "a", "step": 3})
    assert rows == [{"value": 3}]
    other = sqlite3.connect(database, isolation_level=None, timeout=0)  # no waiting at all
    try:
        other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the lock were held
        other.execute("UPDATE counters SET value = value + 10 WHERE id = 'a'")
        other.execute("COMMIT")
    finally:
        other.close()
    assert counter_value(database) == 13  # the chunk statement's change was committed


async def test_a_read_does_not_wait_for_a_writer_and_sees_only_what_is_committed(
    executor: DirectExecutor, database: Path
) -> None:
    read = executor.prepare(READ, [counters.c.value])
    await executor.run(increment(executor), {"target": "a", "step": 5})
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE counters SET value = 99 WHERE id = 'a'")  # not committed
        rows = await executor.run(read, {"target": "a"})
    finally:
        other.close()  # rolls the other writer back
    assert rows == [{"value": 5}]


async def test_a_failed_chunk_statement_is_a_database_error_and_the_next_one_runs(
    executor: DirectExecutor, database: Path
) -> None:
    statement = increment(executor)
    with pytest.raises(DBAPIError):
        await executor.run(statement, {"target": "a", "step": None})  # value = NULL: refused
    rows = await executor.run(statement, {"target": "a", "step": 2})
    assert rows == [{"value": 2}]
    assert counter_value(database) == 2


async def test_the_wal_stays_bounded_over_thousands_of_chunk_commits(
    executor: DirectExecutor, database: Path
) -> None:
    statement = increment(executor)
    wal = database.with_name(database.name + "-wal")

    async def commits(count: int) -> None:
        for _ in range(count):
            await executor.run(statement, {"target": "a", "step": 1})
            checkpoint = executor.pending_checkpoint
            if checkpoint is not None:  # as between requests: let the checkpoint finish
                await checkpoint

    await commits(1_000)
    after_first_thousand = wal.stat().st_size
    await commits(5_000)
    assert wal.stat().st_size <= after_first_thousand  # reused from its start, not grown
    assert counter_value(database) == 6_000


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
