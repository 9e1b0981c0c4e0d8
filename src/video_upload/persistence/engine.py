"""Building the async engine and session factory for SQLite or PostgreSQL, and migrating."""

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

from video_upload.config import DEFAULT_DATABASE_MAX_CONNECTIONS
from video_upload.persistence import sqlite_driver

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Every SQLite connection of the service runs these after `journal_mode=WAL` (the pool's and the
# per-chunk one of `db.sqlite_inline`): commits that do not wait for the disk, foreign keys on.
SQLITE_PRAGMAS = ("synchronous=NORMAL", "foreign_keys=ON")


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
        # hundreds of concurrent uploads made requests time out. (The per-chunk statements also
        # have a connection on the event loop's thread, which never waits: `db.sqlite_inline`.)
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30, "async_creator_fn": sqlite_driver.connect},
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
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    main, _ = pool_limits(max_connections)
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=main.size, max_overflow=main.overflow
    )


def create_chunk_engine(
    url: str, engine: AsyncEngine, max_connections: int = DEFAULT_DATABASE_MAX_CONNECTIONS
) -> AsyncEngine:
    """The engine for the per-chunk statements (`db.chunks`), given the main one.

    On SQLite it is the main engine: one pooled connection per process, whose commits are
    already not flushed one by one (`synchronous=NORMAL` in WAL mode); the statements run on it
    only when the inline connection (`db.sqlite_inline`) finds the write lock taken.

    On PostgreSQL it is a pool of its own whose commits do not wait for the WAL flush
    (`synchronous_commit=off`): a crash of the database server can take back the last fraction
    of a second of lease and offset updates, never a completed upload (completion runs on the
    main engine), and a client then re-sends what the upload's offset no longer counts, as after
    a crash of the local store's machine. It skips the pre-ping: a connection that died with a
    restart of the server fails its one statement with a retryable 503, and the pool then
    replaces all of its connections.
    """
    if is_sqlite(url):
        return engine
    _, chunk = pool_limits(max_connections)
    return create_async_engine(
        url,
        pool_size=chunk.size,
        max_overflow=chunk.overflow,
        connect_args={"server_settings": {"synchronous_commit": "off"}},
    )


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
