"""Which commits wait for the disk: per-chunk progress may be re-sent, a completion never.

On PostgreSQL the per-chunk statements (take the writer lease, commit the offset) run on a pool
of their own with `synchronous_commit=off`; completing an upload sets it back on for its own
commit, and everything else runs on the main pool with PostgreSQL's default. On SQLite every
commit appends to the WAL without waiting (`synchronous=NORMAL`); the main engine keeps one
pooled connection per process, and the per-chunk statements have their own (see
test_sqlite_chunk_statements).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings, new_user
from tests.support import postgres
from tests.support.live import start_server
from tests.support.tus import create_upload, patch_headers
from video_upload.domain.records import Progress
from video_upload.persistence.chunks import ChunkStatements
from video_upload.persistence.column_codecs import POSTGRES, Kind
from video_upload.persistence.direct import Prepared, Statement, prepare_for_postgres
from video_upload.persistence.engine import create_chunk_engine, create_engine, migrate
from video_upload.persistence.sqlite_direct import SQLiteDriver


async def synchronous_commit(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str((await connection.execute(text("SHOW synchronous_commit"))).scalar())


SHOW_SYNCHRONOUS_COMMIT = Statement(
    "SELECT current_setting('synchronous_commit')", parameters=(), returns=(Kind.PLAIN,)
)


def test_postgres_chunk_statements_skip_the_wal_flush_and_everything_else_waits(
    postgres_url: str,
) -> None:
    async def settings() -> tuple[str, str, str]:
        main = create_engine(postgres_url)
        chunks = create_chunk_engine(postgres_url, main)
        show = chunks.prepare(SHOW_SYNCHRONOUS_COMMIT)
        try:
            per_chunk = (await chunks.run(show, ()))[0][0]
            durable = (await chunks.run(show, (), durable=True))[0][0]
            return await synchronous_commit(main), per_chunk, durable
        finally:
            await chunks.close()
            await main.dispose()

    assert asyncio.run(settings()) == ("on", "off", "on")


class RecordingDriver:
    """A driver that runs nothing and remembers which statements asked for a durable commit."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, bool]] = []

    def prepare(self, statement: Statement) -> Prepared:
        return prepare_for_postgres(statement, POSTGRES)

    async def run(
        self, statement: Prepared, values: Sequence[Any], *, durable: bool = False
    ) -> list[list[Any]]:
        self.runs.append((statement.sql.split()[0], durable))
        return []

    async def close(self) -> None:
        pass


async def test_only_sealing_a_completed_upload_waits_for_the_disk() -> None:
    driver = RecordingDriver()
    chunks = ChunkStatements(driver)
    now = datetime.now(UTC)
    progress = Progress(10, {}, None, now, now)
    await chunks.read("u")
    await chunks.take_lease("u", "owner", now, now)
    await chunks.advance(
        "u", expected_offset=0, lease_owner="o", progress=progress, release_lease=True
    )
    await chunks.release("u", "owner")
    assert all(not durable for _, durable in driver.runs)
    await chunks.finish("u", state={}, expires_at=None, at=now)
    assert driver.runs[-1] == ("UPDATE", True)


def test_sqlite_keeps_one_pooled_connection_and_the_chunk_statements_their_own(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'video-upload.db'}"
    main = create_engine(url)
    chunks = create_chunk_engine(url, main)
    try:
        assert main.pool.size() == 1  # type: ignore[attr-defined]
        # one connection on the event loop's thread, one on a worker thread when it is busy
        assert isinstance(chunks, SQLiteDriver)
    finally:
        asyncio.run(chunks.close())
        asyncio.run(main.dispose())


@dataclass
class OwnDatabase:
    """A server on a PostgreSQL database of its own, a user, and one upload of `length` bytes."""

    name: str
    url: str
    client: httpx.Client
    headers: dict[str, str]
    upload: str

    def patch(self, offset: int, body: bytes) -> httpx.Response:
        return self.client.patch(
            self.upload, headers=patch_headers(self.headers, offset), content=body
        )

    def admin(self, statement: str) -> None:
        asyncio.run(postgres.run_as_admin(statement))

    def terminate_connections(self) -> None:
        """What a restart of the database server does to the service's pooled connections."""
        self.admin(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.name}'"
        )


@contextmanager
def own_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, length: int
) -> Iterator[OwnDatabase]:
    url = postgres.create_database()
    name = url.rsplit("/", 1)[1]
    try:
        settings = make_settings(
            request, tmp_path_factory.mktemp(name), "sqlite-local", database_url=url
        )
        migrate(url)
        server = start_server(name, settings)
        try:
            user = new_user(server)
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                session = client.post("/api/v1/sessions", json={}, headers=user.bearer).json()
                upload = create_upload(client, user.headers, str(session["id"]), length)
                yield OwnDatabase(name, url, client, user.headers, upload)
        finally:
            server.stop()
    finally:
        asyncio.run(postgres.run_as_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        postgres.drop_database(url)


def test_postgres_restart_costs_one_retryable_503_then_uploads_go_on(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,  # (only for the skip or failure when PostgreSQL is unreachable)
) -> None:
    with own_database(request, tmp_path_factory, length=30) as db:
        assert db.patch(0, b"a" * 10).status_code == 204
        db.terminate_connections()
        statuses = []
        for offset, piece in ((10, b"b" * 10), (20, b"c" * 10)):
            answer = db.patch(offset, piece)
            if answer.status_code == 503:  # as a tus client does: retry
                statuses.append(503)
                answer = db.patch(offset, piece)
            statuses.append(answer.status_code)
        head = db.client.head(db.upload, headers=db.headers)
    # a connection found closed is replaced before use; one that dies with a statement in
    # flight fails it once, as a 503
    assert statuses in ([204, 204], [503, 204, 204])
    assert head.headers["Upload-Offset"] == "30"


def test_patch_while_postgres_refuses_connections_is_a_retryable_503_then_succeeds(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,  # (only for the skip or failure when PostgreSQL is unreachable)
) -> None:
    with own_database(request, tmp_path_factory, length=20) as db:
        db.admin(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS false')
        db.terminate_connections()
        refused = db.patch(0, b"a" * 10)
        db.admin(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS true')
        accepted = db.patch(0, b"a" * 10)
    assert refused.status_code == 503, refused.text
    assert refused.headers.get("Retry-After")
    assert accepted.status_code == 204, accepted.text
    assert accepted.headers["Upload-Offset"] == "10"
