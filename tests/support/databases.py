"""A migrated database of each kind per test module (SQLite in a temporary file, a throwaway
PostgreSQL database), and the service's `Database` on it per test. A test module imports the
fixtures by name (`from tests.support.databases import database as database`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import create_database_or_skip
from tests.support import postgres
from video_upload.persistence.database import Database
from video_upload.persistence.engine import migrate


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('database') / 'video-upload.db'}"
        migrate(url)
        yield url
        return
    url = create_database_or_skip()
    try:
        migrate(url)
        yield url
    finally:
        postgres.drop_database(url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    opened = Database.open(database_url, 10)
    try:
        yield opened
    finally:
        await opened.close()
