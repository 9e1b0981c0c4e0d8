"""A throwaway PostgreSQL database per test run (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import asyncio
import os
import secrets

import asyncpg

ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def run_as_admin(statement: str) -> None:
    """Run one statement as the admin user (creating, dropping, fencing off databases)."""
    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database() -> str:
    """Create a fresh database; returns its SQLAlchemy URL. Raises OSError when unreachable."""
    name = f"video_upload_test_{secrets.token_hex(6)}"
    asyncio.run(run_as_admin(f'CREATE DATABASE "{name}"'))
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(run_as_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
