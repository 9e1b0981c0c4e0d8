"""Which commits wait for the disk: per-chunk progress may be re-sent, a completion never.

On PostgreSQL the per-chunk statements (take the writer lease, commit the offset) run on a pool
of their own with `synchronous_commit=off`; everything else, completion included, on the main
pool with PostgreSQL's default. On SQLite both are the one connection per process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from video_upload.db.engine import create_chunk_engine, create_engine


async def synchronous_commit(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str((await connection.execute(text("SHOW synchronous_commit"))).scalar())


def test_postgres_chunk_statements_skip_the_wal_flush_and_everything_else_waits(
    postgres_url: str,
) -> None:
    async def settings() -> tuple[str, str]:
        main = create_engine(postgres_url)
        chunks = create_chunk_engine(postgres_url, main)
        try:
            return await synchronous_commit(main), await synchronous_commit(chunks)
        finally:
            await chunks.dispose()
            await main.dispose()

    assert asyncio.run(settings()) == ("on", "off")


def test_sqlite_chunk_statements_share_the_one_connection_per_process(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'video-upload.db'}"
    main = create_engine(url)
    try:
        assert create_chunk_engine(url, main) is main
        assert main.pool.size() == 1  # type: ignore[attr-defined]
    finally:
        asyncio.run(main.dispose())
