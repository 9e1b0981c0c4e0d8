"""Which commits wait for the disk: per-chunk progress may be re-sent, a completion never.

On PostgreSQL the per-chunk statements (take the writer lease, commit the offset) run on a pool
of their own with `synchronous_commit=off`; everything else, completion included, on the main
pool with PostgreSQL's default. On SQLite both are the one connection per process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings, new_user
from tests.support import postgres
from tests.support.live import start_server
from tests.support.tus import create_upload, patch_headers
from video_upload.db.engine import create_chunk_engine, create_engine, migrate


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


def test_postgres_restart_costs_one_retryable_503_then_uploads_go_on(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,  # (only for the skip or failure when PostgreSQL is unreachable)
) -> None:
    url = postgres.create_database()
    try:
        settings = make_settings(
            request, tmp_path_factory.mktemp("pg-restart"), "sqlite-local", database_url=url
        )
        migrate(url)
        server = start_server("pg-restart", settings)
        try:
            user = new_user(server)
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                session = client.post("/api/v1/sessions", json={}, headers=user.bearer).json()
                upload = create_upload(client, user.headers, str(session["id"]), 30)
                first = client.patch(
                    upload, headers=patch_headers(user.headers, 0), content=b"a" * 10
                )
                assert first.status_code == 204
                asyncio.run(terminate_connections(url))  # what a restart of the server does

                statuses = []
                offset = 10
                for piece in (b"b" * 10, b"c" * 10):
                    answer = client.patch(
                        upload, headers=patch_headers(user.headers, offset), content=piece
                    )
                    if answer.status_code == 503:  # as a tus client does: retry
                        statuses.append(503)
                        answer = client.patch(
                            upload, headers=patch_headers(user.headers, offset), content=piece
                        )
                    statuses.append(answer.status_code)
                    offset += 10
                head = client.head(upload, headers=user.headers)
        finally:
            server.stop()
    finally:
        postgres.drop_database(url)
    assert statuses == [503, 204, 204]  # the stale per-chunk connection fails once, as a 503
    assert head.headers["Upload-Offset"] == "30"


async def terminate_connections(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(postgres.ADMIN_DSN)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await admin.close()


def test_patch_while_postgres_refuses_connections_is_a_retryable_503_then_succeeds(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,  # (only for the skip or failure when PostgreSQL is unreachable)
) -> None:
    url = postgres.create_database()
    name = url.rsplit("/", 1)[1]
    try:
        settings = make_settings(
            request, tmp_path_factory.mktemp("pg-down"), "sqlite-local", database_url=url
        )
        migrate(url)
        server = start_server("pg-down", settings)
        try:
            user = new_user(server)
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                session = client.post("/api/v1/sessions", json={}, headers=user.bearer).json()
                upload = create_upload(client, user.headers, str(session["id"]), 20)
                asyncio.run(admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                asyncio.run(terminate_connections(url))
                refused = client.patch(
                    upload, headers=patch_headers(user.headers, 0), content=b"a" * 10
                )
                asyncio.run(admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
                accepted = client.patch(
                    upload, headers=patch_headers(user.headers, 0), content=b"a" * 10
                )
        finally:
            server.stop()
    finally:
        asyncio.run(admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        postgres.drop_database(url)
    assert refused.status_code == 503, refused.text
    assert refused.headers.get("Retry-After")
    assert accepted.status_code == 204, accepted.text
    assert accepted.headers["Upload-Offset"] == "10"


async def admin(statement: str) -> None:
    connection = await asyncpg.connect(postgres.ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
