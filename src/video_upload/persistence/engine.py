"""Building the async engine and session factory for SQLite or PostgreSQL, the connection of the
per-chunk statements, and migrating."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.pool import AsyncAdaptedQueuePool

from video_upload.config import DEFAULT_DATABASE_MAX_CONNECTIONS
from video_upload.persistence import sqlite_direct
from video_upload.persistence.direct import ChunkDriver, sqlite_file
from video_upload.persistence.sqlite_pragmas import BUSY_TIMEOUT_SECONDS
from video_upload.persistence.sqlite_pragmas import SQLITE_PRAGMAS as SQLITE_PRAGMAS

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


@dataclass(frozen=True)
class PoolLimits:
    """A SQLAlchemy pool's size: connections kept open, and how many more it may open."""

    size: int
    overflow: int

    @property
    def most(self) -> int:
        return self.size + self.overflow


def pool_limits(max_connections: int) -> tuple[PoolLimits, PoolLimits]:
    """How one process's PostgreSQL connections are shared between its two pools: three fifths
    for most work (a third of them kept open), the rest for the per-chunk statements (a quarter
    kept open). 50 gives 10 + 20 and 5 + 15; each pool gets at least one."""
    if max_connections < 2:
        raise ValueError("PostgreSQL needs at least 2 connections per process (one per pool)")
    main = min(max_connections - 1, math.ceil(max_connections * 3 / 5))
    chunk = max_connections - main
    main_open = max(1, main // 3)
    chunk_open = max(1, chunk // 4)
    return PoolLimits(main_open, main - main_open), PoolLimits(chunk_open, chunk - chunk_open)


def create_engine(url: str, max_connections: int = DEFAULT_DATABASE_MAX_CONNECTIONS) -> AsyncEngine:
    """An engine with the pragmas and pool settings each back end needs (on PostgreSQL, the
    main pool's share of `max_connections`)."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # One pooled connection per process: SQLite has a single writer anyway, and queueing in
        # the pool is far cheaper than connections sleeping in SQLite's busy handler, which under
        # hundreds of concurrent uploads made requests time out. (The per-chunk statements have
        # connections of their own: `persistence.sqlite_direct`.)
        engine = create_async_engine(
            url,
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS},
            poolclass=AsyncAdaptedQueuePool,  # (early SQLAlchemy 2.0 releases pick NullPool)
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(f"PRAGMA {pragma}")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
            cursor.close()

        return engine
    main, _ = pool_limits(max_connections)
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=main.size, max_overflow=main.overflow
    )


def create_chunk_engine(
    url: str, engine: AsyncEngine, max_connections: int = DEFAULT_DATABASE_MAX_CONNECTIONS
) -> ChunkDriver:
    """Where the per-chunk statements (`persistence.chunks`) run, given the main engine: a
    driver of `persistence.direct` (nothing connects until the first statement).

    On PostgreSQL, an asyncpg pool of their own, of the per-chunk share of `max_connections`,
    whose commits do not wait for the WAL flush (`persistence.postgres_direct`: a crash of the
    database server can take back the last fraction of a second of lease and offset updates,
    never a completed upload).

    On SQLite, a connection on the event loop's thread that never waits and, when another
    connection holds the write lock, one on a worker thread that does
    (`persistence.sqlite_direct`); for a database named by a URI (`file:...?uri=true`), the main
    engine's pooled connection.
    """
    parsed = make_url(url)
    if is_sqlite(url):
        database = sqlite_file(parsed)
        if database is None:
            return sqlite_direct.EngineDriver(engine)
        return sqlite_direct.SQLiteDriver(database)
    # imported only for PostgreSQL: a SQLite service never loads asyncpg
    from video_upload.persistence.postgres_direct import PostgresDriver

    _, chunk = pool_limits(max_connections)
    return PostgresDriver.for_url(parsed, chunk.most)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # imported only to migrate: a server never needs it

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema up to date (synchronous: call it before the event loop starts)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


async def migrate_async(url: str) -> None:
    """Bring the schema up to date from inside a running event loop."""
    await asyncio.to_thread(migrate, url)
