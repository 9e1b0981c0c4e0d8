"""Alembic environment: runs the migrations over the async engine for the configured URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from video_upload.persistence.engine import create_engine, is_sqlite
from video_upload.persistence.models import Base

MIGRATION_LOCK = 7_241_813_007  # an arbitrary, fixed advisory-lock key for schema migrations


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=is_sqlite(str(connection.engine.url)),
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several nodes may start at once: the first migrates, the others wait for it
            # and then find the schema up to date.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_run_online(context.config.get_main_option("sqlalchemy.url") or ""))
