"""DATABASE_MAX_CONNECTIONS: how many PostgreSQL connections one worker process may open.

A deployment of many nodes and workers must fit PostgreSQL's `max_connections` (or a pooler's):
the budget caps both of a process's pools together, and uploads still complete under it, waiting
for a connection instead of failing.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from tests.conftest import create_database_or_skip
from tests.support import postgres
from tests.support.live import LiveServer, start_server
from tests.support.tus import auth, create_upload, patch_headers
from video_upload.config import Settings
from video_upload.persistence.engine import (
    create_chunk_engine,
    create_engine,
    migrate,
    pool_limits,
)
from video_upload.persistence.postgres_direct import PostgresDriver

BUDGET = 3
UPLOADS = 12
CHUNKS = 4
CHUNK = 256 * 1024


@pytest.mark.parametrize("budget", [2, 3, 7, 50, 51])
def test_both_pools_together_never_exceed_the_budget(budget: int) -> None:
    main, chunk = pool_limits(budget)
    assert main.most + chunk.most == budget
    assert min(main.size, chunk.size) >= 1  # each pool can always serve a statement


def test_the_default_budget_keeps_the_pools_measured_in_the_benchmarks() -> None:
    main, chunk = pool_limits(Settings(_env_file=None).database_max_connections)  # type: ignore[call-arg]
    assert (main.size, main.overflow, chunk.size, chunk.overflow) == (10, 20, 5, 15)


@pytest.mark.parametrize("budget", [2, 7, 50])
def test_the_per_chunk_statements_pool_takes_the_rest_of_the_budget(budget: int) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/nothing"  # nothing connects before a statement
    engine = create_engine(url, budget)
    try:
        chunks = create_chunk_engine(url, engine, budget)
        assert isinstance(chunks, PostgresDriver)
        main, chunk = pool_limits(budget)
        assert engine.pool.size() == main.size  # type: ignore[attr-defined]
        assert chunks.max_size == chunk.most == budget - main.most
    finally:
        asyncio.run(engine.dispose())


def test_a_budget_below_one_connection_per_pool_is_refused() -> None:
    with pytest.raises(ValueError):
        Settings(_env_file=None, database_max_connections=1)  # type: ignore[call-arg]


@pytest.fixture
def budgeted_server(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """A server on a PostgreSQL database of its own, allowed BUDGET connections."""
    url = create_database_or_skip()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        local_storage_path=tmp_path / "uploads",
        database_url=url,
        jwt_secret=SecretStr("test-secret-" + secrets.token_hex(16)),
        video_probe=False,
        database_max_connections=BUDGET,
    )
    migrate(url)
    server = start_server("budget", settings)
    try:
        yield server, url.rsplit("/", 1)[1]
    finally:
        server.stop()
        postgres.drop_database(url)


def _watch_connections(database: str, stop: threading.Event, seen: list[int]) -> None:
    """Count the connections to `database` (from the admin database) until `stop` is set."""

    async def watch() -> None:
        connection = await asyncpg.connect(postgres.ADMIN_DSN, timeout=5)
        try:
            while not stop.is_set():
                count = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
                )
                seen.append(int(count))
                await asyncio.sleep(0.002)
        finally:
            await connection.close()

    asyncio.run(watch())


def test_concurrent_uploads_complete_within_the_connection_budget(
    budgeted_server: tuple[LiveServer, str],
) -> None:
    server, database = budgeted_server
    token = server.token("budget-user")
    headers = auth(token)
    payload = secrets.token_bytes(CHUNK * CHUNKS)
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        created = client.post("/api/v1/sessions", json={"name": "budget"}, headers=bearer)
        assert created.status_code == 201, created.text
        session_id = str(created.json()["id"])

    def upload(_: int) -> int:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            url = create_upload(client, headers, session_id, len(payload))
            offset = 0
            while offset < len(payload):
                body = payload[offset : offset + CHUNK]
                response = client.patch(url, headers=patch_headers(headers, offset), content=body)
                assert response.status_code == 204, response.text
                offset = int(response.headers["Upload-Offset"])
            return offset

    stop = threading.Event()
    seen: list[int] = []
    watcher = threading.Thread(target=_watch_connections, args=(database, stop, seen))
    watcher.start()
    try:
        with ThreadPoolExecutor(UPLOADS) as pool:
            offsets = list(pool.map(upload, range(UPLOADS)))
    finally:
        stop.set()
        watcher.join()
    assert offsets == [len(payload)] * UPLOADS
    assert seen and max(seen) >= 1  # the watcher saw the server's connections at all
    assert max(seen) <= BUDGET
