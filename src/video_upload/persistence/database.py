"""The service's database: its engines, a unit of work per task, and the per-chunk statements.

This is the one door into persistence for the layers above. They open `transaction()` (an
`async with` block whose `Transaction` gives the repositories and `commit`), call the
per-chunk statements on `chunks`, and never see SQLAlchemy: records come and go as
`domain.records` dataclasses, and connection failures arrive as the retryable 503 of the
error table (see `persistence.errors`).
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from video_upload.persistence.chunks import ChunkStatements
from video_upload.persistence.direct import ChunkDriver
from video_upload.persistence.engine import (
    create_chunk_engine,
    create_engine,
    create_session_factory,
)
from video_upload.persistence.errors import raise_if_unavailable
from video_upload.persistence.leases import LeaseRepository
from video_upload.persistence.outbox import OutboxRepository
from video_upload.persistence.repository import SessionRepository, VideoRepository
from video_upload.persistence.staging import DatabaseStaging


class Transaction:
    """One unit of work: the repositories over one session; nothing is kept without `commit`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.videos = VideoRepository(session)
        self.sessions = SessionRepository(session)
        self.leases = LeaseRepository(session)
        self.outbox = OutboxRepository(session)

    async def commit(self) -> None:
        await self._session.commit()


class TransactionScope:
    """`Database.transaction()`'s context: a `Transaction`, closed (rolled back if not
    committed) on the way out, with connection failures turned into the retryable 503."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._session = factory()

    async def __aenter__(self) -> Transaction:
        return Transaction(self._session)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._session.close()
        except Exception as error:
            if exc is None:
                raise_if_unavailable(error)
                raise
        raise_if_unavailable(exc)


class Database:
    """The engines of one process, and what runs on them."""

    def __init__(self, engine: AsyncEngine, chunk_driver: ChunkDriver) -> None:
        self._engine = engine
        self._sessions = create_session_factory(engine)
        # the per-chunk statements run on a driver of their own (see `engine.create_chunk_engine`)
        self.chunks = ChunkStatements(chunk_driver)
        # the S3 store's staged pieces (S3_STAGING=database), on the same driver
        self.staging = DatabaseStaging(chunk_driver)

    @classmethod
    def open(cls, url: str, max_connections: int) -> Database:
        """The engines for `url` (nothing connects until the first statement)."""
        engine = create_engine(url, max_connections)
        return cls(engine, create_chunk_engine(url, engine, max_connections))

    @property
    def backend(self) -> str:
        """The database's kind, for logs: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    def transaction(self) -> TransactionScope:
        return TransactionScope(self._sessions)

    async def ping(self) -> None:
        """Run `SELECT 1`; raises whatever stops the database from answering."""
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.chunks.close()
        await self._engine.dispose()
