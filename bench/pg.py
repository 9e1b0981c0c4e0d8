"""A throwaway PostgreSQL database at 127.0.0.1:5432 (trust auth, user postgres), dropped after."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

ADMIN_DSN = os.environ.get(
    "BENCH_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def _execute(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _run(statement: str) -> None:
    """Run one admin statement on a private event loop (callable from inside another loop)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _execute(statement)).result()


def unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        _run("SELECT 1")
    except Exception as error:  # OSError for refusals, asyncpg's own errors for the rest
        return f"PostgreSQL at {ADMIN_DSN.rsplit('@', 1)[-1]} is unreachable: {error}"
    return None


@contextmanager
def throwaway_database() -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh database; drop it afterwards."""
    name = f"video_upload_bench_{secrets.token_hex(6)}"
    _run(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        _run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
