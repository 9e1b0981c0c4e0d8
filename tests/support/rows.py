"""Direct access to the service's tables for tests that set up or inspect rows with SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine


@asynccontextmanager
async def orm_session(database_url: str) -> AsyncIterator[AsyncSession]:
    """An ORM session on a connection of its own to the service's database."""
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            yield session
    finally:
        await engine.dispose()
