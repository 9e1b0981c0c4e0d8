"""The per-chunk statements' asyncpg pool: which failures are the retryable 503 (the server is
unreachable, a connection died under a statement, no connection came free in time) and which
are left to propagate as a logged 500 (a missing table); the pool stays usable after them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import create_database_or_skip
from tests.support import postgres
from video_upload.domain.errors import ERR_DATABASE_UNAVAILABLE, ServiceError
from video_upload.persistence.chunks import ChunkStatements
from video_upload.persistence.column_codecs import Kind
from video_upload.persistence.direct import Statement
from video_upload.persistence.errors import is_unavailable
from video_upload.persistence.postgres_direct import PostgresDriver, connect_arguments

ONE = Statement("SELECT 1", parameters=(), returns=(Kind.PLAIN,))


def sleeping(marker: str, seconds: float) -> Statement:
    """A statement that takes `seconds`, findable in pg_stat_activity by `marker`."""
    return Statement(
        f"SELECT pg_sleep({seconds}) -- {marker}", parameters=(), returns=(Kind.PLAIN,)
    )


@pytest.fixture
async def driver(postgres_url: str) -> AsyncIterator[PostgresDriver]:
    runner = PostgresDriver.for_url(make_url(postgres_url), 2)
    try:
        yield runner
    finally:
        await runner.close()


async def backends_running(marker: str) -> list[int]:
    connection = await asyncpg.connect(postgres.ADMIN_DSN, timeout=5)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1",
            f"%-- {marker}",
        )
    finally:
        await connection.close()
    return [int(row["pid"]) for row in rows]


async def until_running(marker: str) -> list[int]:
    """The backends running the statement marked `marker`, once there is one (10 s at most)."""
    for _ in range(200):
        if pids := await backends_running(marker):
            return pids
        await asyncio.sleep(0.05)
    pytest.fail(f"the statement {marker!r} never showed up in pg_stat_activity")


async def test_a_connection_lost_under_a_statement_is_retryable_and_the_next_one_runs(
    driver: PostgresDriver,
) -> None:
    running = asyncio.ensure_future(driver.run(driver.prepare(sleeping("lost", 30)), ()))
    pids = await until_running("lost")
    await postgres.run_as_admin(f"SELECT pg_terminate_backend({pids[0]})")
    with pytest.raises(Exception) as raised:
        await running
    assert is_unavailable(raised.value), repr(raised.value)
    assert await driver.run(driver.prepare(ONE), ()) == [[1]]  # a new connection took its place


async def test_an_unreachable_server_is_the_retryable_503() -> None:
    driver = PostgresDriver({"host": "127.0.0.1", "port": 1, "user": "nobody"}, 2)
    try:
        with pytest.raises(ServiceError) as raised:
            await ChunkStatements(driver).read("some-upload")
    finally:
        await driver.close()
    assert raised.value.kind == ERR_DATABASE_UNAVAILABLE


async def test_waiting_in_vain_for_a_free_connection_is_the_retryable_503(
    postgres_url: str,
) -> None:
    driver = PostgresDriver.for_url(make_url(postgres_url), 1)
    driver.acquire_timeout = 0.2
    try:
        busy = asyncio.ensure_future(driver.run(driver.prepare(sleeping("busy", 2)), ()))
        await until_running("busy")  # the pool's one connection is taken
        with pytest.raises(ServiceError) as raised:
            await ChunkStatements(driver).read("some-upload")
        assert raised.value.kind == ERR_DATABASE_UNAVAILABLE
        await busy
    finally:
        await driver.close()


@pytest.fixture
def unmigrated_url() -> Iterator[str]:
    url = create_database_or_skip()
    yield url
    postgres.drop_database(url)


async def test_a_missing_table_is_not_the_retryable_503(unmigrated_url: str) -> None:
    driver = PostgresDriver.for_url(make_url(unmigrated_url), 1)
    try:
        with pytest.raises(asyncpg.UndefinedTableError) as raised:
            await ChunkStatements(driver).read("some-upload")
        assert not is_unavailable(raised.value)
        # the connection is still good for the next statement
        assert await driver.run(driver.prepare(ONE), ()) == [[1]]
    finally:
        await driver.close()


async def test_the_pool_never_opens_more_than_its_share(driver: PostgresDriver) -> None:
    statement = driver.prepare(sleeping("share", 0.3))
    running = asyncio.gather(*(driver.run(statement, ()) for _ in range(6)))
    seen: list[int] = []
    while not running.done():  # watched for the whole run: about 0.9 s, three rounds of two
        seen.append(len(await backends_running("share")))
    await running
    assert max(seen) == 2  # the other four waited for one of them


def test_the_url_means_to_asyncpg_what_it_means_to_sqlalchemy() -> None:
    url = make_url(
        "postgresql+asyncpg://uploader:s%40cret@db.internal:6543/videos"
        "?ssl=require&prepared_statement_cache_size=500"
    )
    assert connect_arguments(url) == {
        "host": "db.internal",
        "port": 6543,
        "user": "uploader",
        "password": "s@cret",
        "database": "videos",
        "ssl": "require",
    }
