"""The engines `video_upload.persistence.engine` builds, inspected before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.pool import QueuePool

from video_upload.persistence.engine import create_engine, is_sqlite, pool_limits


def queue_pool(pool: object) -> QueuePool:
    assert isinstance(pool, QueuePool)  # the async engines' pool is a subclass
    return pool


def test_a_sqlite_file_gets_one_pooled_connection_and_its_directory(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "video-upload.db"

    engine = create_engine(f"sqlite+aiosqlite:///{database}")

    pool = queue_pool(engine.pool)
    assert (pool.size(), pool.timeout()) == (1, 60)
    assert database.parent.is_dir() and not database.exists()  # nothing connected yet
    engine.sync_engine.dispose()


@pytest.mark.parametrize("budget", [2, 9, 50])
def test_a_postgresql_engine_keeps_open_the_main_pools_share_of_the_budget(budget: int) -> None:
    engine = create_engine("postgresql+asyncpg://user@127.0.0.1:9/none", budget)

    main, _ = pool_limits(budget)
    assert queue_pool(engine.pool).size() == main.size
    engine.sync_engine.dispose()


@pytest.mark.parametrize(
    ("url", "sqlite"),
    [
        ("sqlite+aiosqlite:///./data/x.db", True),
        ("sqlite+aiosqlite://", True),
        ("postgresql+asyncpg://u@h/db", False),
    ],
)
def test_the_back_end_is_told_by_the_urls_dialect(url: str, sqlite: bool) -> None:
    assert is_sqlite(url) is sqlite
